/*-------------------------------------------------------------------------
 *
 * http_report.c
 *		  How an attempt ended: the one classification of failures (which
 *		  decides retries and the SQLSTATE), and the errors of a request
 *		  that finally failed: the host and path it tried, the API's own
 *		  message (redacted, clipped, in the database encoding).
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "http_int.h"

/*
 * The libcurl errors that are not USAGE_FAIL_TRANSPORT: their class, whether
 * they are retried, and the extension's own words for them, the same with
 * every libcurl version (libcurl's texts change between releases; its own
 * message goes to the server log).  NULL: libcurl's text.
 */
typedef struct CurlErrorClass
{
	CURLcode	code;
	UsageFailure failure;
	bool		retryable;
	const char *text;
} CurlErrorClass;

static const CurlErrorClass curl_error_classes[] = {
	{CURLE_COULDNT_CONNECT, USAGE_FAIL_CONNECTION, true,
	"could not connect to the server"},
	/* a name that does not resolve will not resolve in a second either */
	{CURLE_COULDNT_RESOLVE_HOST, USAGE_FAIL_CONNECTION, false,
	"could not resolve the server's host name"},
	{CURLE_COULDNT_RESOLVE_PROXY, USAGE_FAIL_CONNECTION, false,
	"could not resolve the proxy's host name"},
	{CURLE_OPERATION_TIMEDOUT, USAGE_FAIL_CONNECTION, true, "timed out"},
	{CURLE_SEND_ERROR, USAGE_FAIL_CONNECTION, true,
	"could not send the request"},
	{CURLE_RECV_ERROR, USAGE_FAIL_CONNECTION, true,
	"could not receive the response"},
	{CURLE_GOT_NOTHING, USAGE_FAIL_CONNECTION, true,
	"the server closed the connection without an answer"},
	{CURLE_PARTIAL_FILE, USAGE_FAIL_CONNECTION, true,
	"the connection closed before the whole response arrived"},
	{CURLE_SSL_CONNECT_ERROR, USAGE_FAIL_CONNECTION, false,
	"the TLS handshake failed"},
	{CURLE_HTTP2, USAGE_FAIL_TRANSPORT, true, NULL},
	{CURLE_HTTP2_STREAM, USAGE_FAIL_TRANSPORT, true, NULL},
	{CURLE_PEER_FAILED_VERIFICATION, USAGE_FAIL_TLS, false, NULL},
#if LIBCURL_VERSION_NUM < 0x073e00
	{CURLE_SSL_CACERT, USAGE_FAIL_TLS, false, NULL},
#endif
	{CURLE_SSL_CACERT_BADFILE, USAGE_FAIL_TLS, false, NULL},
	{CURLE_FILESIZE_EXCEEDED, USAGE_FAIL_TOO_LARGE, false, NULL},
};


/*
 * classify
 *		The one classification of how an attempt ended.
 *
 * A body over the limit fails at once.  A libcurl error is classed by
 * curl_error_classes (others are USAGE_FAIL_TRANSPORT, not retried).  HTTP
 * 200 is success; 429, 500, 502, 503 and 504 are retried; 401 and 403 are
 * refusals (a 401 may still be cured by a new token: refresh_bearer).
 */
FailureClass
usage_http_classify(UsageTransfer *x)
{
	FailureClass c = {USAGE_FAIL_NONE, false, NULL};
	long		st = x->status;

	if (x->too_large || x->headers_too_large)
		c.failure = USAGE_FAIL_TOO_LARGE;
	else if (x->result != CURLE_OK)
	{
		c.failure = USAGE_FAIL_TRANSPORT;
		c.text = curl_easy_strerror(x->result);
		for (int i = 0; i < (int) lengthof(curl_error_classes); i++)
		{
			if (curl_error_classes[i].code != x->result)
				continue;
			c.failure = curl_error_classes[i].failure;
			c.retryable = curl_error_classes[i].retryable;
			if (curl_error_classes[i].text)
				c.text = curl_error_classes[i].text;
			break;
		}
	}
	else if (st == 200)
		c.failure = USAGE_FAIL_NONE;
	else if (st == 401 || st == 403)
		c.failure = USAGE_FAIL_AUTH;
	else if (st == 429 || st >= 500)
	{
		c.failure = USAGE_FAIL_SERVER;
		c.retryable = (st == 429 || st == 500 || st == 502 ||
					   st == 503 || st == 504);
	}
	else
		c.failure = USAGE_FAIL_CLIENT;
	return c;
}

/* ----------------------------------------------------------------
 *		Errors
 * ----------------------------------------------------------------
 */

/* The path and query of a URL, for messages (the origin is left out). */
static const char *
url_path(const char *url)
{
	const char *p = strstr(url, "://");

	if (p == NULL)
		return url;
	p = strchr(p + 3, '/');
	return p ? p : "/";
}

/*
 * The host name of a URL, for messages (not the whole URL: its query may
 * carry values); "?" when it does not parse.
 */
static const char *
url_host(const char *url)
{
	CURLU	   *u = curl_url();
	char	   *host = NULL;
	char	   *result;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		result = pstrdup("?");
	else
		result = pstrdup(host);
	curl_free(host);
	curl_url_cleanup(u);
	return usage_api_text(result, strlen(result), 300);
}

/*
 * The API's own message from an error body, as a sentence for errdetail:
 * the value of "message", "error.message", "error_description" or "error"
 * when the body is JSON that has one, else the start of the body.
 */
static char *
api_detail(UsageTransfer *x)
{
	char	   *msg = NULL;
	bool		found = false;

	if (x->len == 0)
		return pstrdup("The response body was empty.");

	/* usage_json_get_string reports malformed JSON as "not found" */
	msg = usage_json_get_string(x->buf, x->len, "message", &found);
	if (!found)
		msg = usage_json_get_string(x->buf, x->len, "error.message", &found);
	if (!found)
		msg = usage_json_get_string(x->buf, x->len, "error_description", &found);
	if (!found)
		msg = usage_json_get_string(x->buf, x->len, "error", &found);

	if (found && msg != NULL)
		return psprintf("The API's message was \"%s\".",
						usage_api_text(msg, strlen(msg), API_TEXT_MAX_BYTES));
	return psprintf("The response body was \"%s\".",
					usage_api_text(x->buf, x->len, API_TEXT_MAX_BYTES));
}


/* The failure's SQLSTATE: the one classification decides it too. */
static int
failure_errcode(UsageFailure failure)
{
	switch (failure)
	{
		case USAGE_FAIL_CONNECTION:
		case USAGE_FAIL_TLS:
			return ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION;
		case USAGE_FAIL_AUTH:
			return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
		default:
			return ERRCODE_FDW_ERROR;
	}
}

/*
 * What a failure report shows, computed before any ereport starts:
 * api_detail() may catch and discard an encoding error
 * (usage_json_get_string), which must not happen while an ereport is being
 * built.
 */
typedef struct FailureReport
{
	UsageTransfer *x;
	FailureClass cls;
	const char *host;			/* of the URL */
	const char *path;			/* of the URL, fit for a message */
	const char *what;			/* the caller's context */
	char	   *detail;			/* HTTP errors: the API's message */
	char	   *curl_text;		/* libcurl errors: libcurl's message */
} FailureReport;

/* A libcurl error: the connection, the certificate, or anything else. */
USAGE_NORETURN static void
report_transport_failure(const FailureReport *r)
{
	UsageTransfer *x = r->x;
	int			tries = x->attempts;

	if (r->cls.failure == USAGE_FAIL_CONNECTION)
		ereport(ERROR,
				(errcode(failure_errcode(r->cls.failure)),
				 errmsg_plural("%s %s failed after %d attempt: %s",
							   "%s %s failed after %d attempts: %s",
							   tries, x->method, r->path, tries, r->cls.text),
				 errdetail("The host was \"%s\"; the last attempt ended with libcurl error code %d.",
						   r->host, (int) x->result),
				 errdetail_log("libcurl reported: %s.", r->curl_text),
				 errhint("Check base_url, the network, proxy and timeout_ms / max_retries of the server."),
				 errcontext("%s", r->what)));
	if (r->cls.failure == USAGE_FAIL_TLS)
		ereport(ERROR,
				(errcode(failure_errcode(r->cls.failure)),
				 errmsg("%s %s failed: the server's TLS certificate could not be verified",
						x->method, r->path),
				 errdetail("The host was \"%s\"; the last attempt ended with libcurl error code %d.",
						   r->host, (int) x->result),
				 errdetail_log("libcurl reported: %s.", r->curl_text),
				 errhint("Use the server option ca_file to trust a private certificate authority."),
				 errcontext("%s", r->what)));
	ereport(ERROR,
			(errcode(failure_errcode(r->cls.failure)),
			 errmsg("%s %s failed: %s", x->method, r->path, r->cls.text),
			 errdetail("The host was \"%s\"; libcurl reported: %s.",
					   r->host, r->curl_text),
			 errcontext("%s", r->what)));
}

/* An HTTP status other than 200. */
USAGE_NORETURN static void
report_http_failure(const FailureReport *r)
{
	UsageTransfer *x = r->x;
	int			tries = x->attempts;

	if (r->cls.failure == USAGE_FAIL_AUTH)
		ereport(ERROR,
				(errcode(failure_errcode(r->cls.failure)),
				 errmsg("%s %s was refused with HTTP %ld",
						x->method, r->path, x->status),
				 errdetail("%s", r->detail),
				 errhint("Check the credentials in the user mapping and the permissions of the API application."),
				 errcontext("%s", r->what)));

	if (x->retry_after_s >= 0)
	{
		char	   *value = usage_api_text(x->retry_after, strlen(x->retry_after), 60);

		ereport(ERROR,
				(errcode(failure_errcode(r->cls.failure)),
				 errmsg("%s %s failed with HTTP %ld and \"Retry-After: %s\", a longer wait than the %d s this client accepts",
						x->method, r->path, x->status, value,
						Max(x->timeout_ms, RETRY_AFTER_CAP_MS) / 1000),
				 errdetail("%s", r->detail),
				 errhint("Retry the query later.  A Retry-After of up to %d s (or timeout_ms, if longer) is waited for.",
						 RETRY_AFTER_CAP_MS / 1000),
				 errcontext("%s", r->what)));
	}

	ereport(ERROR,
			(errcode(failure_errcode(r->cls.failure)),
			 errmsg_plural("%s %s failed with HTTP %ld after %d attempt",
						   "%s %s failed with HTTP %ld after %d attempts",
						   tries, x->method, r->path, x->status, tries),
			 errdetail("%s", r->detail),
			 errcontext("%s", r->what)));
}

/*
 * usage_http_report_failure
 *		ereport the final failure of a transfer.
 *
 * what names the caller's context, e.g. "request for foreign table
 * usage.t".
 */
void
usage_http_report_failure(UsageTransfer *x, const char *what)
{
	const char *rawpath = url_path(x->url);
	FailureReport r = {0};

	r.x = x;
	r.cls = usage_http_classify(x);
	r.host = url_host(x->url);
	r.path = usage_api_text(rawpath, strlen(rawpath), 2000);
	r.what = what;
	if (x->result != CURLE_OK)
	{
		const char *err = x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result);

		r.curl_text = usage_api_text(err, strlen(err), API_TEXT_MAX_BYTES);
	}
	else if (!x->too_large)
		r.detail = api_detail(x);

	if (x->headers_too_large)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the response headers from host \"%s\" exceed the limit of %d kB",
						r.host, MAX_HEADER_BYTES / 1024),
				 errdetail("The response to %s %s was not read.", x->method, r.path),
				 errcontext("%s", what)));
	if (r.cls.failure == USAGE_FAIL_TOO_LARGE)
		ereport(ERROR,
				(errcode(failure_errcode(r.cls.failure)),
				 errmsg("response to %s %s is larger than the limit of %d MiB",
						x->method, r.path, USAGE_MAX_RESPONSE_BYTES / (1024 * 1024)),
				 errcontext("%s", what)));
	if (x->result != CURLE_OK)
		report_transport_failure(&r);
	report_http_failure(&r);
}
