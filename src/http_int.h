/*-------------------------------------------------------------------------
 *
 * http_int.h
 *		  What the HTTP client's files share (http.c the transport,
 *		  http_report.c its failures, redact.c the API's text): a transfer,
 *		  and the one classification of how an attempt ended.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#ifndef USAGE_HTTP_INT_H
#define USAGE_HTTP_INT_H

#include <curl/curl.h>

#include "lib/ilist.h"
#include "utils/timestamp.h"

#include "usage_fdw.h"

/* longest Retry-After honoured: this, or timeout_ms if that is longer */
#define RETRY_AFTER_CAP_MS 60000
/* longest Retry-After value kept (a longer one is not a usable value) */
#define RETRY_AFTER_MAX_LEN 128
/* how much of an API's error text goes into a message */
#define API_TEXT_MAX_BYTES 500
/*
 * A 200's body is paused when this much of it is waiting for its reader
 * (the reader may not have started yet: a page fetched ahead), so that
 * PostgreSQL's memory stays flat whatever the body's size.  Time paused
 * does not count towards timeout_ms.
 */
#define STREAM_BUFFER_BYTES USAGE_STREAM_BUFFER_BYTES
/* the most response header bytes accepted (libcurl refuses a line >100 kB) */
#define MAX_HEADER_BYTES (64 * 1024)
/* secrets shorter than this are not redacted: they would match any text */
#define MIN_REDACTED_LEN 4
#define REDACTED "[redacted]"

/* where a transfer is */
typedef enum UsageXferState
{
	USAGE_XFER_WAITING,			/* scheduled, not yet sent (backoff) */
	USAGE_XFER_RUNNING,
	USAGE_XFER_DONE
} UsageXferState;

/* one HTTP request, with its retries; see usage_http_start() */
struct UsageTransfer
{
	dlist_node	node;			/* in all_transfers */
	CURL	   *easy;
	struct curl_slist *headers;
	char	   *method;			/* malloc'd copies, for messages */
	char	   *url;
	char	   *body_type;		/* malloc'd content type of the body, or
								 * NULL without a body */
	UsageTransfer **owner;		/* the owner's slot, cleared when freed */
	bool		in_multi;
	UsageXferState state;

	/* bearer token */
	bool		has_bearer;
	UsageBearerSource bearer;
	bool		bearer_refreshed;	/* sent again with a new token already */

	/* retry policy */
	int			attempts;		/* attempts started */
	int			max_retries;
	int			timeout_ms;
	TimestampTz not_before;		/* WAITING: when to send again */
	TimestampTz deadline;		/* RUNNING: when the attempt times out
								 * (timeout_ms, time paused not counted) */
	TimestampTz paused_at;		/* when write_cb paused it */

	/* result of the last attempt */
	CURLcode	result;
	long		status;
	char		errbuf[CURL_ERROR_SIZE];
	char	   *buf;			/* response body (malloc'd), or what of it
								 * has not been taken yet */
	size_t		len;
	size_t		cap;
	size_t		taken;			/* of buf[0..len), bytes the reader has */
	size_t		received;		/* body bytes of the attempt, taken or not */
	bool		streaming;		/* the reader takes the body as it comes
								 * (usage_http_take): no retry, and a pause
								 * while it is behind */
	bool		paused;			/* by write_cb, for the reader to catch up */
	bool		too_large;
	char	   *content_type;	/* malloc'd */
	char	   *retry_after;	/* malloc'd value of the Retry-After header of
								 * the last response, or NULL */
	size_t		header_bytes;	/* of the response headers so far */
	bool		in_headers;		/* a status line came, the headers' end not
								 * yet */
	bool		headers_too_large;	/* over MAX_HEADER_BYTES, or a line over
									 * libcurl's limit */
	int64		retry_after_s;	/* >= 0: retries stopped, the server asked
								 * for this long a wait */

	UsageHttpStats *stats;		/* owner's counters, or NULL */
};


/* How an attempt ended, and whether that is worth another attempt. */
typedef struct FailureClass
{
	UsageFailure failure;
	bool		retryable;
	const char *text;			/* libcurl errors: what to call it */
} FailureClass;

extern FailureClass usage_http_classify(UsageTransfer *x);
extern void usage_http_free_transfer(UsageTransfer *x);
extern bool usage_http_set_options(UsageTransfer *x, const UsageHttpRequest *req);
extern void usage_http_build_headers(UsageTransfer *x);
extern void usage_http_forget_secrets(void);

#endif							/* USAGE_HTTP_INT_H */
