/*-------------------------------------------------------------------------
 *
 * http.c
 *		  HTTP client of usage_fdw: libcurl's multi interface, driven by the
 *		  backend's own wait machinery.
 *
 * One multi handle per backend holds the connection cache, so connections
 * are kept alive and reused across requests and scans.  Transfers run
 * concurrently; the backend waits on a WaitEventSet holding its latch and
 * every socket libcurl asked to watch, so query cancel and
 * statement_timeout are served within a wait slice (at most 100 ms) even
 * while connecting, transferring or sleeping before a retry.  No threads
 * are created here.  (libcurl's own threaded DNS resolver may use one
 * during name resolution; it never runs PostgreSQL code.)
 *
 * Nothing that can ereport() runs inside a libcurl callback: the callbacks
 * only use malloc and flags.  Transfers live in malloc'd memory on a
 * backend-global list.  Each belongs to an owner slot (a UsageTransfer
 * pointer of its owner): usage_http_release(slot) frees the transfer and
 * clears the slot, and a transaction callback does the same for whatever is
 * left at transaction end, so neither an ERROR nor a cancel leaks a handle,
 * a socket or a buffer, and no owner is left with a dangling pointer.
 *
 * Retries: classify() is the one classification of failures.  Connection
 * failures, timeouts, truncated bodies and HTTP 429, 500, 502, 503, 504 are
 * retried up to max_retries times.  A 401 is sent once more with a new
 * bearer token when the request's bearer source can get one.  A retry never
 * follows at once: it waits an exponential backoff with jitter (about
 * 0.1-0.2 s at first, doubling, capped), or longer when the server asks so
 * with a usable Retry-After (seconds or HTTP date).  An unparsable
 * Retry-After is ignored (the backoff applies); one asking for more than
 * RETRY_AFTER_CAP_MS (or timeout_ms, if longer) fails at once.
 *
 * Text that comes from an API (error bodies, messages, header values) goes
 * through usage_api_text() before it reaches an error message, so that it
 * is valid in the database encoding whatever the server sent, and so that
 * no secret of the requests under way reaches a message when a server
 * reflects a request back (see usage_redact_secrets).
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "common/pg_prng.h"
#include "lib/ilist.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "usage_fdw.h"

/* longest single wait, so that interrupts are always checked promptly */
#define WAIT_SLICE_MS 100
/* backoff: first retry after ~BACKOFF_BASE_MS, doubling, capped */
#define BACKOFF_BASE_MS 200
#define BACKOFF_MAX_MS 10000
/* longest Retry-After honoured: this, or timeout_ms if that is longer */
#define RETRY_AFTER_CAP_MS 60000
/* longest Retry-After value kept (a longer one is not a usable value) */
#define RETRY_AFTER_MAX_LEN 128
/* libcurl's code for oversized headers, where it has one */
#if LIBCURL_VERSION_NUM >= 0x080600
#define USAGE_CURLE_TOO_LARGE CURLE_TOO_LARGE
#else
#define USAGE_CURLE_TOO_LARGE CURLE_OUT_OF_MEMORY
#endif
/* how much of an API's error text goes into a message */
#define API_TEXT_MAX_BYTES 500
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

	/* result of the last attempt */
	CURLcode	result;
	long		status;
	char		errbuf[CURL_ERROR_SIZE];
	char	   *buf;			/* response body (malloc'd) */
	size_t		len;
	size_t		cap;
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

/* one watched socket */
typedef struct WatchedSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN / OUT / INOUT */
} WatchedSocket;

static CURLM *multi = NULL;
static dlist_head all_transfers = DLIST_STATIC_INIT(all_transfers);
static WatchedSocket *sockets = NULL;
static int	nsockets = 0;
static int	maxsockets = 0;
static TimestampTz curl_timer_at = 0;	/* 0: no timer */
static bool curl_timer_set = false;
static bool callbacks_registered = false;

/* waits so far: a wait is charged once to each scan's stats */
static uint64 wait_count = 0;

/*
 * The secrets of the requests of this transaction (credentials of the user
 * mappings, bearer tokens), each in the forms a server may reflect it in:
 * as sent, URL- or form-encoded, JSON-escaped.  malloc'd; overwritten and
 * freed at transaction end.
 */
static char **secret_forms = NULL;
static int	nsecret_forms = 0;
static int	maxsecret_forms = 0;
static size_t longest_secret_form = 0;

static void release_all_transfers(void);

/* ----------------------------------------------------------------
 *		libcurl callbacks (no ereport in here)
 * ----------------------------------------------------------------
 */

/*
 * Append received body bytes to the transfer's buffer.  A body of exactly
 * USAGE_MAX_RESPONSE_BYTES is accepted; one byte more is refused.  The
 * buffer keeps a terminating NUL after the body.
 */
static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	UsageTransfer *x = (UsageTransfer *) userdata;
	size_t		n = size * nmemb;

	if (x->len + n > USAGE_MAX_RESPONSE_BYTES)
	{
		x->too_large = true;
		return 0;				/* makes libcurl abort with CURLE_WRITE_ERROR */
	}
	if (x->len + n + 1 > x->cap)
	{
		size_t		newcap = Max(x->cap * 2, x->len + n + 1);
		char	   *nb;

		newcap = Max(newcap, 16384);
		newcap = Min(newcap, (size_t) USAGE_MAX_RESPONSE_BYTES + 1);
		nb = realloc(x->buf, newcap);
		if (nb == NULL)
			return 0;
		x->buf = nb;
		x->cap = newcap;
	}
	memcpy(x->buf + x->len, ptr, n);
	x->len += n;
	x->buf[x->len] = '\0';
	return n;
}

/*
 * Keep the Retry-After header of the last response (a 1xx interim response
 * or a proxy's answer to CONNECT does not count: a status line starts
 * afresh).  Only malloc here; a value too long to be usable is dropped.
 */
static size_t
header_cb(char *buffer, size_t size, size_t nitems, void *userdata)
{
	UsageTransfer *x = (UsageTransfer *) userdata;
	size_t		n = size * nitems;

	/* oversized headers: stop here rather than let libcurl buffer them */
	x->header_bytes += n;
	if (x->header_bytes > MAX_HEADER_BYTES)
	{
		x->headers_too_large = true;
		return 0;				/* makes libcurl abort the transfer */
	}
	if (n >= 5 && strncmp(buffer, "HTTP/", 5) == 0)
	{
		x->in_headers = true;
		free(x->retry_after);
		x->retry_after = NULL;
	}
	else if ((n == 2 && buffer[0] == '\r' && buffer[1] == '\n') ||
			 (n == 1 && buffer[0] == '\n'))
		x->in_headers = false;
	else if (n > 12 && pg_strncasecmp(buffer, "Retry-After:", 12) == 0)
	{
		const char *v = buffer + 12;
		size_t		vl = n - 12;

		while (vl > 0 && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t' ||
						  v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		free(x->retry_after);
		x->retry_after = NULL;
		if (vl <= RETRY_AFTER_MAX_LEN)
		{
			x->retry_after = malloc(vl + 1);
			if (x->retry_after)
			{
				memcpy(x->retry_after, v, vl);
				x->retry_after[vl] = '\0';
			}
		}
	}
	return n;
}

/*
 * libcurl asks to watch a socket for reading and/or writing, or to stop
 * watching it: keep the list that wait_for_events() waits on.
 */
static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	int			i;

	for (i = 0; i < nsockets; i++)
		if (sockets[i].fd == s)
			break;

	if (what == CURL_POLL_REMOVE)
	{
		if (i < nsockets)
			sockets[i] = sockets[--nsockets];
		return 0;
	}
	if (i == nsockets)
	{
		if (nsockets == maxsockets)
		{
			int			newmax = Max(16, maxsockets * 2);
			WatchedSocket *ns = realloc(sockets, sizeof(WatchedSocket) * newmax);

			if (ns == NULL)
				return -1;
			sockets = ns;
			maxsockets = newmax;
		}
		nsockets++;
	}
	sockets[i].fd = s;
	sockets[i].what = what;
	return 0;
}

/* libcurl asks to be called after timeout_ms (-1: no timer). */
static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	if (timeout_ms < 0)
		curl_timer_set = false;
	else
	{
		curl_timer_set = true;
		curl_timer_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	}
	return 0;
}

/* ----------------------------------------------------------------
 *		Secrets to redact
 * ----------------------------------------------------------------
 */

/* Remember one form of a secret (once). */
static void
add_secret_form(const char *form)
{
	char	   *copy;

	for (int i = 0; i < nsecret_forms; i++)
	{
		if (strcmp(secret_forms[i], form) == 0)
			return;
	}
	if (nsecret_forms == maxsecret_forms)
	{
		int			newmax = Max(8, maxsecret_forms * 2);
		char	  **n = realloc(secret_forms, sizeof(char *) * newmax);

		if (n == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		secret_forms = n;
		maxsecret_forms = newmax;
	}
	copy = strdup(form);
	if (copy == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	secret_forms[nsecret_forms++] = copy;
	longest_secret_form = Max(longest_secret_form, strlen(copy));
}

/* Overwrite and forget every secret (transaction end). */
static void
forget_secrets(void)
{
	for (int i = 0; i < nsecret_forms; i++)
	{
		explicit_bzero(secret_forms[i], strlen(secret_forms[i]));
		free(secret_forms[i]);
	}
	nsecret_forms = 0;
	longest_secret_form = 0;
}

/* Lower-case the hexadecimal digits of %XX escapes. */
static char *
lower_hex_escapes(const char *s)
{
	char	   *r = pstrdup(s);

	for (char *p = r; *p; p++)
	{
		if (*p == '%' && p[1] && p[2])
		{
			p[1] = pg_tolower((unsigned char) p[1]);
			p[2] = pg_tolower((unsigned char) p[2]);
			p += 2;
		}
	}
	return r;
}

/*
 * usage_http_note_secret
 *		Redact secret, in every form a server may reflect it in, from any
 *		API text that reaches a message until the transaction ends.
 *
 * The forms: as sent; URL-encoded (upper- and lower-case hex, and with '+'
 * for a space, as a form body has it); JSON-escaped (also with "\/").
 */
void
usage_http_note_secret(const char *secret)
{
	StringInfoData enc;
	StringInfoData json;
	char	   *p;

	if (secret == NULL || strlen(secret) < MIN_REDACTED_LEN)
		return;
	add_secret_form(secret);

	initStringInfo(&enc);
	usage_append_url_encoded(&enc, secret);
	add_secret_form(enc.data);
	p = lower_hex_escapes(enc.data);
	add_secret_form(p);
	explicit_bzero(p, strlen(p));
	pfree(p);
	while ((p = strstr(enc.data, "%20")) != NULL)
	{
		*p = '+';
		memmove(p + 1, p + 3, strlen(p + 3) + 1);
	}
	add_secret_form(enc.data);

	initStringInfo(&json);
	escape_json(&json, secret);
	/* without the quotes */
	json.data[json.len - 1] = '\0';
	add_secret_form(json.data + 1);
	if (strchr(secret, '/') != NULL)
	{
		StringInfoData slash;

		initStringInfo(&slash);
		for (const char *q = json.data + 1; *q; q++)
		{
			if (*q == '/')
				appendStringInfoChar(&slash, '\\');
			appendStringInfoChar(&slash, *q);
		}
		add_secret_form(slash.data);
		explicit_bzero(slash.data, slash.len);
	}
	explicit_bzero(enc.data, enc.len);
	explicit_bzero(json.data, json.len);
}

/*
 * usage_redact_secrets
 *		len bytes of s with every noted secret replaced by "[redacted]";
 *		palloc'd and NUL-terminated, its length in *outlen.
 */
char *
usage_redact_secrets(const char *s, size_t len, size_t *outlen)
{
	StringInfoData out;
	size_t		i = 0;

	initStringInfo(&out);
	while (i < len)
	{
		bool		hit = false;

		for (int k = 0; k < nsecret_forms && !hit; k++)
		{
			size_t		fl = strlen(secret_forms[k]);

			if (fl <= len - i && memcmp(s + i, secret_forms[k], fl) == 0)
			{
				appendStringInfoString(&out, REDACTED);
				i += fl;
				hit = true;
			}
		}
		if (!hit)
			appendStringInfoChar(&out, s[i++]);
	}
	*outlen = out.len;
	return out.data;
}

/* ----------------------------------------------------------------
 *		Set-up and clean-up
 * ----------------------------------------------------------------
 */

/*
 * The safety net: at transaction end, free whatever transfers are left and
 * clear their owners' slots.
 */
static void
http_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* no scan outlives its transaction: whatever is left is garbage */
			release_all_transfers();
			forget_secrets();
			break;
		default:
			break;
	}
}

/* Backend exit: free the transfers and the multi handle. */
static void
http_proc_exit(int code, Datum arg)
{
	release_all_transfers();
	if (multi)
		curl_multi_cleanup(multi);
	multi = NULL;
}

/*
 * Called from _PG_init.
 */
void
usage_http_init(void)
{
	CURLcode	rc = curl_global_init(CURL_GLOBAL_ALL);

	if (rc != CURLE_OK)
		elog(ERROR, "could not initialize libcurl: %s", curl_easy_strerror(rc));
}

/*
 * Create the backend's multi handle on first use, and register the
 * transaction and exit callbacks.
 */
static void
ensure_multi(void)
{
	if (multi != NULL)
		return;
	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	/* connections kept for reuse; enough for max_concurrency = 64 */
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 64L);
	if (!callbacks_registered)
	{
		RegisterXactCallback(http_xact_callback, NULL);
		on_proc_exit(http_proc_exit, (Datum) 0);
		callbacks_registered = true;
	}
}

/* Free a transfer and clear its owner's slot. */
static void
free_transfer(UsageTransfer *x)
{
	if (x->owner != NULL)
		*x->owner = NULL;
	if (x->in_multi)
		curl_multi_remove_handle(multi, x->easy);
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->buf);
	free(x->content_type);
	free(x->retry_after);
	free(x->method);
	free(x->url);
	free(x->body_type);
	dlist_delete(&x->node);
	free(x);
}

/* Free every transfer, clearing the owner slots. */
static void
release_all_transfers(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &all_transfers)
	{
		UsageTransfer *x = dlist_container(UsageTransfer, node, iter.cur);

		free_transfer(x);
	}
}

/*
 * Release the transfer of an owner slot, stopping it if still running, and
 * clear the slot.  Safe on an empty slot.
 */
void
usage_http_release(UsageTransfer **owner)
{
	if (*owner != NULL)
		free_transfer(*owner);
	Assert(*owner == NULL);
}

/* ----------------------------------------------------------------
 *		Starting transfers
 * ----------------------------------------------------------------
 */

/* Append a header line; out of memory frees the transfer and fails. */
static struct curl_slist *
append_header(UsageTransfer *x, struct curl_slist *list, const char *h)
{
	struct curl_slist *n = curl_slist_append(list, h);

	if (n == NULL)
	{
		free_transfer(x);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	return n;
}

/*
 * (Re)build the request headers: the body's content type, and the bearer
 * token when the request has a source of tokens (asked for the current one
 * first, as that may fetch one).
 */
static void
build_headers(UsageTransfer *x)
{
	struct curl_slist *h = NULL;
	char	   *auth = NULL;
	char	   *line;

	if (x->has_bearer)
	{
		const char *token = x->bearer.token(x->bearer.arg);

		usage_http_note_secret(token);
		auth = psprintf("Authorization: Bearer %s", token);
	}
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	h = append_header(x, h, "Accept: application/json");
	x->headers = h;
	if (x->body_type)
	{
		line = psprintf("Content-Type: %s", x->body_type);
		x->headers = h = append_header(x, h, line);
		pfree(line);
		/* no "Expect: 100-continue" round trip */
		x->headers = h = append_header(x, h, "Expect:");
	}
	if (auth)
	{
		x->headers = h = append_header(x, h, auth);
		/* do not leave the token lying around in palloc'd memory */
		explicit_bzero(auth, strlen(auth));
		pfree(auth);
	}
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
}

/*
 * Start an attempt of a transfer: forget the previous attempt's outcome and
 * hand the easy handle to the multi handle.
 */
static void
start_attempt(UsageTransfer *x)
{
	CURLMcode	mc;

	x->len = 0;
	if (x->buf)
		x->buf[0] = '\0';
	x->too_large = false;
	x->header_bytes = 0;
	x->in_headers = false;
	x->headers_too_large = false;
	x->status = 0;
	x->result = CURLE_OK;
	x->errbuf[0] = '\0';
	free(x->content_type);
	x->content_type = NULL;
	free(x->retry_after);
	x->retry_after = NULL;
	x->retry_after_s = -1;

	mc = curl_multi_add_handle(multi, x->easy);
	if (mc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not start HTTP request: %s", curl_multi_strerror(mc))));
	x->in_multi = true;
	x->state = USAGE_XFER_RUNNING;
	x->attempts++;
	if (x->stats)
		x->stats->requests++;
}

#define SETOPT(opt, val) \
	do { \
		if (curl_easy_setopt(x->easy, opt, val) != CURLE_OK) \
			goto setopt_failed; \
	} while (0)

/*
 * Set the options of a new transfer's easy handle.  Returns false when
 * libcurl refuses one.
 */
static bool
set_options(UsageTransfer *x, const UsageHttpRequest *req)
{
	UsageOptions *opts = req->opts;

	SETOPT(CURLOPT_PRIVATE, x);
	SETOPT(CURLOPT_URL, req->url);
	SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(CURLOPT_WRITEDATA, x);
	SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(CURLOPT_HEADERDATA, x);
	SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SETOPT(CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SETOPT(CURLOPT_TIMEOUT_MS, (long) opts->timeout_ms);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long) opts->connect_timeout_ms);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(CURLOPT_USERAGENT, "usage_fdw/1.0");
	SETOPT(CURLOPT_ACCEPT_ENCODING, "");
	/* refuse a body announced as too large before reading it */
	SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) USAGE_MAX_RESPONSE_BYTES);
	if (opts->ca_file)
		SETOPT(CURLOPT_CAINFO, opts->ca_file);
	if (opts->proxy)
		SETOPT(CURLOPT_PROXY, opts->proxy);
	if (strcmp(req->method, "POST") == 0)
	{
		SETOPT(CURLOPT_POST, 1L);
		SETOPT(CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
	}
	else
		SETOPT(CURLOPT_HTTPGET, 1L);
	return true;

setopt_failed:
	return false;
}

/*
 * Create and start a transfer, owned by the slot *owner (which must be
 * empty): see usage_http_release().
 */
void
usage_http_start(const UsageHttpRequest *req, UsageHttpStats *stats,
				 UsageTransfer **owner)
{
	UsageTransfer *x;

	Assert(*owner == NULL);
	ensure_multi();
	/* whatever a server reflects of these, no message shows */
	usage_http_note_secret(req->opts->access_token);
	usage_http_note_secret(req->opts->client_secret);

	x = calloc(1, sizeof(UsageTransfer));
	if (x == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	dlist_push_tail(&all_transfers, &x->node);
	x->owner = owner;
	*owner = x;
	/* not driven before its first attempt starts */
	x->state = USAGE_XFER_DONE;
	x->method = strdup(req->method);
	x->url = strdup(req->url);
	if (req->body)
		x->body_type = strdup(req->content_type ? req->content_type :
							  "application/json");
	x->easy = curl_easy_init();
	if (x->method == NULL || x->url == NULL || x->easy == NULL ||
		(req->body && x->body_type == NULL))
	{
		free_transfer(x);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	x->stats = stats;
	x->max_retries = req->opts->max_retries;
	x->timeout_ms = req->opts->timeout_ms;
	if (req->bearer)
	{
		x->has_bearer = true;
		x->bearer = *req->bearer;
	}

	if (!set_options(x, req))
	{
		free_transfer(x);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not configure HTTP request"),
				 errdetail("libcurl refused an option; it may be too old.")));
	}
	build_headers(x);
	start_attempt(x);
}

/*
 * After a 401: when the request has a bearer source that can get a new
 * token, and this request has not been sent again for that already, send
 * it again with the new token (the retry counter is not reset).  Returns
 * whether it did.
 */
static bool
refresh_bearer(UsageTransfer *x)
{
	if (x->state != USAGE_XFER_DONE || x->result != CURLE_OK ||
		x->status != 401 || !x->has_bearer || x->bearer_refreshed)
		return false;
	if (!x->bearer.refresh(x->bearer.arg))
		return false;
	x->bearer_refreshed = true;
	build_headers(x);
	start_attempt(x);
	return true;
}

/* ----------------------------------------------------------------
 *		Completion and retries
 * ----------------------------------------------------------------
 */

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

/* How an attempt ended, and whether that is worth another attempt. */
typedef struct FailureClass
{
	UsageFailure failure;
	bool		retryable;
	const char *text;			/* libcurl errors: what to call it */
} FailureClass;

/*
 * classify
 *		The one classification of how an attempt ended.
 *
 * A body over the limit fails at once.  A libcurl error is classed by
 * curl_error_classes (others are USAGE_FAIL_TRANSPORT, not retried).  HTTP
 * 200 is success; 429, 500, 502, 503 and 504 are retried; 401 and 403 are
 * refusals (a 401 may still be cured by a new token: refresh_bearer).
 */
static FailureClass
classify(UsageTransfer *x)
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

/*
 * The wait a Retry-After value asks for, in seconds (RFC 9110 10.2.3: a
 * number of seconds or an HTTP date; a date in the past means no wait).
 * Returns -1 when the value is neither, i.e. unusable.  A number too large
 * to represent is returned as PG_INT64_MAX.
 */
static int64
parse_retry_after(const char *v)
{
	const char *p;
	int64		secs = 0;
	time_t		when;

	if (v[0] == '\0')
		return -1;
	for (p = v; *p >= '0' && *p <= '9'; p++)
	{
		if (secs > (PG_INT64_MAX - 9) / 10)
			return PG_INT64_MAX;
		secs = secs * 10 + (*p - '0');
	}
	if (*p == '\0')
		return secs;
	if (p != v)
		return -1;				/* digits followed by something else */
	when = curl_getdate(v, NULL);
	if (when == (time_t) -1)
		return -1;
	secs = (int64) when - (int64) time(NULL);
	return Max(secs, 0);
}

/*
 * The backoff before retry number "retry" (1, 2, ...): a random wait
 * between half and all of a step that starts at BACKOFF_BASE_MS and doubles
 * up to BACKOFF_MAX_MS, so the first retry waits 100-200 ms.
 */
static long
backoff_ms(int retry)
{
	long		step = BACKOFF_BASE_MS;

	for (int i = 1; i < retry && step < BACKOFF_MAX_MS; i++)
		step *= 2;
	step = Min(step, BACKOFF_MAX_MS);
	return step / 2 + (long) pg_prng_uint64_range(&pg_global_prng_state, 0, step / 2);
}

/*
 * An attempt ended: record its outcome, and schedule a retry when it failed
 * in a retryable way and retries are left.  Not called from inside a
 * libcurl callback.
 */
static void
finish_attempt(UsageTransfer *x, CURLcode rc)
{
	char	   *ct = NULL;
	long		delay_ms;

	x->result = rc;
	if (rc == CURLE_FILESIZE_EXCEEDED)
		x->too_large = true;

	/*
	 * A header line longer than libcurl takes (100 kB) never reaches
	 * header_cb: libcurl gives up while reading headers, with "out of
	 * memory" (or CURLE_TOO_LARGE from 8.6 on).
	 */
	if (x->in_headers &&
		(rc == CURLE_OUT_OF_MEMORY || rc == USAGE_CURLE_TOO_LARGE))
		x->headers_too_large = true;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
		x->content_type = strdup(ct);
	if (x->stats)
		x->stats->bytes += x->len;
	curl_multi_remove_handle(multi, x->easy);
	x->in_multi = false;
	x->state = USAGE_XFER_DONE;

	if (!classify(x).retryable || x->attempts > x->max_retries)
		return;

	/* never at once: at least the backoff */
	delay_ms = backoff_ms(x->attempts);

	/*
	 * Retry-After, when usable, may ask for longer (libcurl's
	 * CURLINFO_RETRY_AFTER cannot tell an absent header from "0", so the
	 * header is read here).
	 */
	if (rc == CURLE_OK && x->retry_after != NULL)
	{
		int64		ra = parse_retry_after(x->retry_after);
		int			cap_ms = Max(x->timeout_ms, RETRY_AFTER_CAP_MS);

		if (ra < 0)
			elog(DEBUG1, "usage_fdw: ignoring an unusable Retry-After header of %s %s",
				 x->method, x->url);
		else if (ra > cap_ms / 1000)
		{
			/* waiting that long would look like a hang: fail now */
			x->retry_after_s = ra;
			return;
		}
		else
			delay_ms = Max(delay_ms, (long) ra * 1000);
	}

	elog(DEBUG1, "usage_fdw: retrying %s %s in %ld ms (attempt %d: %s)",
		 x->method, x->url, delay_ms, x->attempts,
		 rc != CURLE_OK ? curl_easy_strerror(rc) : psprintf("HTTP %ld", x->status));
	x->state = USAGE_XFER_WAITING;
	x->not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay_ms);
	if (x->stats)
		x->stats->retries++;
}

/* Finish the attempts that libcurl reports as done. */
static void
process_completions(void)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		UsageTransfer *x = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &x);
		if (x)
			finish_attempt(x, msg->data.result);
	}
}

/* Start the retries whose backoff is over. */
static void
start_due_retries(TimestampTz now)
{
	dlist_iter	iter;

	dlist_foreach(iter, &all_transfers)
	{
		UsageTransfer *x = dlist_container(UsageTransfer, node, iter.cur);

		if (x->state == USAGE_XFER_WAITING && x->not_before <= now)
			start_attempt(x);
	}
}

/* ----------------------------------------------------------------
 *		Waiting
 * ----------------------------------------------------------------
 */

/* Milliseconds from now until then, rounded up; 0 when past. */
static long
ms_until(TimestampTz now, TimestampTz then)
{
	long		secs;
	int			usecs;

	if (then <= now)
		return 0;
	TimestampDifference(now, then, &secs, &usecs);
	return secs * 1000 + (usecs + 999) / 1000;
}

/*
 * One WaitEventSetWait on the latch and the sockets libcurl watches.  The
 * set is freed even when the wait errors out (its epoll descriptor would
 * otherwise leak).
 */
static int
wait_for_events(long timeout, WaitEvent *occurred, int noccurred)
{
	WaitEventSet *volatile set = NULL;
	volatile int nev = 0;

	PG_TRY();
	{
		set = usage_compat_wait_event_set(nsockets + 2);
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		if (IsUnderPostmaster)
			AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		for (int i = 0; i < nsockets; i++)
		{
			uint32		ev = 0;

			if (sockets[i].what & CURL_POLL_IN)
				ev |= WL_SOCKET_READABLE;
			if (sockets[i].what & CURL_POLL_OUT)
				ev |= WL_SOCKET_WRITEABLE;
			if (ev)
				AddWaitEventToSet(set, ev, sockets[i].fd, NULL, NULL);
		}
		nev = WaitEventSetWait(set, timeout, occurred, noccurred,
							   usage_compat_wait_event());
	}
	PG_CATCH();
	{
		if (set)
			FreeWaitEventSet(set);
		PG_RE_THROW();
	}
	PG_END_TRY();
	FreeWaitEventSet(set);
	return nev;
}

/*
 * How long the next wait may last at most: max_wait_ms, or less when
 * libcurl's timer or a retry is due sooner.
 */
static long
wait_timeout(TimestampTz now, long max_wait_ms)
{
	long		timeout = max_wait_ms;
	dlist_iter	iter;

	if (curl_timer_set)
		timeout = Min(timeout, ms_until(now, curl_timer_at));
	dlist_foreach(iter, &all_transfers)
	{
		UsageTransfer *x = dlist_container(UsageTransfer, node, iter.cur);

		if (x->state == USAGE_XFER_WAITING)
			timeout = Min(timeout, ms_until(now, x->not_before));
	}
	return timeout;
}

/*
 * A wait counts, once, for every scan that has a transfer under way: each
 * scan's stats remember the last wait charged to them.
 */
static void
charge_wait(double ms)
{
	dlist_iter	iter;

	wait_count++;
	dlist_foreach(iter, &all_transfers)
	{
		UsageTransfer *x = dlist_container(UsageTransfer, node, iter.cur);

		if (x->stats == NULL || x->state == USAGE_XFER_DONE ||
			x->stats->charged_wait == wait_count)
			continue;
		x->stats->wait_ms += ms;
		x->stats->charged_wait = wait_count;
	}
}

/*
 * Hand the events of a wait to libcurl.  Returns whether the latch was set.
 */
static bool
dispatch_events(WaitEvent *occurred, int nev)
{
	bool		latch_set = false;
	int			running;

	for (int i = 0; i < nev; i++)
	{
		WaitEvent  *e = &occurred[i];
		int			mask = 0;

		if (e->events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			latch_set = true;
			continue;
		}
		if (e->events & WL_SOCKET_READABLE)
			mask |= CURL_CSELECT_IN;
		if (e->events & WL_SOCKET_WRITEABLE)
			mask |= CURL_CSELECT_OUT;
		if (mask != 0)
			curl_multi_socket_action(multi, e->fd, mask, &running);
	}
	if (nev == 0 ||
		(curl_timer_set && curl_timer_at <= GetCurrentTimestamp()))
		curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	return latch_set;
}

/*
 * Wait once for network activity, a timer, a retry becoming due, or the
 * latch, then let libcurl do its work.  Interrupts are checked.
 */
static void
http_step(long max_wait_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	WaitEvent	occurred[64];
	int			nev;
	bool		latch_set;
	instr_time	start,
				end;

	CHECK_FOR_INTERRUPTS();
	ensure_multi();
	start_due_retries(now);

	INSTR_TIME_SET_CURRENT(start);
	nev = wait_for_events(wait_timeout(now, max_wait_ms),
						  occurred, lengthof(occurred));
	INSTR_TIME_SET_CURRENT(end);
	INSTR_TIME_SUBTRACT(end, start);
	charge_wait(INSTR_TIME_GET_MILLISEC(end));

	latch_set = dispatch_events(occurred, nev);
	process_completions();
	if (latch_set)
		CHECK_FOR_INTERRUPTS();
}

/*
 * Drive all transfers until xfer is done (succeeded, or failed for good).
 * A 401 is sent again with a new token first, when that can be had.
 */
void
usage_http_wait(UsageTransfer *xfer)
{
	do
	{
		while (xfer->state != USAGE_XFER_DONE)
			http_step(WAIT_SLICE_MS);
	} while (refresh_bearer(xfer));
}

/*
 * Let transfers progress without blocking: send what can be sent, read what
 * has arrived.  Called after starting a transfer and now and then while rows
 * are returned, so that prefetched pages download in the meantime.
 */
void
usage_http_poll(void)
{
	if (multi == NULL || dlist_is_empty(&all_transfers))
		return;
	http_step(0);
}

/*
 * Has the transfer's last attempt ended, with no retry to come?  (A 401
 * that usage_http_wait() would send again with a new token counts as done.)
 */
bool
usage_http_is_done(UsageTransfer *xfer)
{
	return xfer->state == USAGE_XFER_DONE;
}

/* How a done transfer ended. */
UsageFailure
usage_http_failure(UsageTransfer *xfer)
{
	return classify(xfer).failure;
}

/* The HTTP status of a done transfer; 0 when libcurl failed. */
long
usage_http_status(UsageTransfer *xfer)
{
	return xfer->result == CURLE_OK ? xfer->status : 0;
}

/* The response body of a done transfer (NUL-terminated), and its length. */
const char *
usage_http_body(UsageTransfer *xfer, size_t *len)
{
	*len = xfer->len;
	return xfer->buf ? xfer->buf : "";
}

/* The Content-Type of the response, or NULL when it had none. */
const char *
usage_http_content_type(UsageTransfer *xfer)
{
	return xfer->content_type;
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
 * Pass UTF-8 text through the conversion to encoding "target", a stretch at
 * a time: where the conversion stops at a character that target cannot
 * hold, that character becomes '?'.  With convert, the result is in target;
 * without, it stays UTF-8 (only the characters that cannot be converted are
 * replaced).  Without a conversion (no catalog access, or none defined)
 * only ASCII is kept.
 */
static char *
utf8_keep_convertible(const char *utf8, int len, int target, bool convert)
{
	StringInfoData out;
	const unsigned char *src = (const unsigned char *) utf8;
	int			pos = 0;
	Oid			proc = InvalidOid;
	unsigned char *dest = NULL;
	int			destlen = len * MAX_CONVERSION_GROWTH + 1;

	if (IsTransactionState())
		proc = FindDefaultConversionProc(PG_UTF8, target);
	if (OidIsValid(proc))
		dest = palloc(destlen);

	initStringInfo(&out);
	while (pos < len)
	{
		int			done = 0;

		if (OidIsValid(proc))
		{
			done = pg_do_encoding_conversion_buf(proc, PG_UTF8, target,
												 (unsigned char *) src + pos,
												 len - pos, dest, destlen, true);
			if (convert)
				appendStringInfoString(&out, (char *) dest);
			else
				appendBinaryStringInfo(&out, (const char *) src + pos, done);
		}
		else
		{
			while (pos + done < len && src[pos + done] < 0x80)
				done++;
			appendBinaryStringInfo(&out, (const char *) src + pos, done);
		}
		pos += done;
		if (pos < len)
		{
			/* a character that target cannot hold */
			appendStringInfoChar(&out, '?');
			pos += pg_utf_mblen(src + pos);
		}
	}
	if (dest)
		pfree(dest);
	return out.data;
}

/*
 * usage_api_text
 *		Text that came from an API (an error body, a message, a header
 *		value), made fit for an error message.
 *
 * The bytes are taken as UTF-8, JSON's encoding.  The result is valid in the
 * database encoding: an invalid UTF-8 sequence becomes '?', and so does a
 * character that the database encoding cannot represent (ASCII always can).
 * A character that the client's encoding cannot represent becomes '?' as
 * well, so that sending the message to the client cannot fail and replace
 * it with an encoding error.  Every secret noted by usage_http_note_secret
 * becomes "[redacted]", first.  Control characters become spaces.  At most
 * max_bytes of the input are used, cut on a character boundary, and "..."
 * marks a cut.  Never fails on bad input; the result is palloc'd.
 */
char *
usage_api_text(const char *s, size_t len, size_t max_bytes)
{
	StringInfoData buf;
	size_t		i = 0;
	int			dbenc = GetDatabaseEncoding();
	int			clientenc = pg_get_client_encoding();
	char	   *text;
	bool		cut = false;

	if (s == NULL)
		return pstrdup("");

	/*
	 * Secrets out first, over enough of the text that one straddling the
	 * cut at max_bytes is replaced whole.
	 */
	if (nsecret_forms > 0)
	{
		size_t		window = Min(len, max_bytes + longest_secret_form);

		cut = window < len;
		s = usage_redact_secrets(s, window, &len);
	}

	/* valid UTF-8, without control characters */
	initStringInfo(&buf);
	while (i < len && i < max_bytes)
	{
		unsigned char c = (unsigned char) s[i];
		int			l;

		if (c < 0x80)
		{
			appendStringInfoChar(&buf, (c < 0x20 || c == 0x7f) ? ' ' : (char) c);
			i++;
			continue;
		}
		l = pg_utf_mblen((const unsigned char *) s + i);
		if (i + l <= len && pg_utf8_islegal((const unsigned char *) s + i, l))
		{
			if (i + l > max_bytes)
				break;			/* a whole character that does not fit */
			appendBinaryStringInfo(&buf, s + i, l);
			i += l;
		}
		else
		{
			appendStringInfoChar(&buf, '?');
			i++;
		}
	}
	if (i < len || cut)
		appendStringInfoString(&buf, "...");
	text = buf.data;

	/* what the client cannot show, then what the database cannot hold */
	if (clientenc != PG_UTF8 && clientenc != PG_SQL_ASCII && clientenc != dbenc)
		text = utf8_keep_convertible(text, strlen(text), clientenc, false);
	if (dbenc != PG_UTF8 && dbenc != PG_SQL_ASCII)
		text = utf8_keep_convertible(text, strlen(text), dbenc, true);
	return text;
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
	r.cls = classify(x);
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
