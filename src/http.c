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
 * backend-global list; their owner (a scan) releases them, and a transaction
 * callback releases whatever is left at transaction end, so neither an
 * ERROR nor a cancel leaks a handle, a socket or a buffer.
 *
 * Retries: connection failures, timeouts, truncated bodies and HTTP 429,
 * 500, 502, 503, 504 are retried up to max_retries times.  A retry never
 * follows at once: it waits an exponential backoff with jitter (about
 * 0.1-0.2 s at first, doubling, capped), or longer when the server asks so
 * with a usable Retry-After (seconds or HTTP date).  An unparsable
 * Retry-After is ignored (the backoff applies); one asking for more than
 * RETRY_AFTER_CAP_MS (or timeout_ms, if longer) fails at once.
 *
 * Text that comes from an API (error bodies, messages, header values) goes
 * through usage_api_text() before it reaches an error message, so that it
 * is valid in the database encoding whatever the server sent.
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
/* how much of an API's error text goes into a message */
#define API_TEXT_MAX_BYTES 500

struct UsageTransfer
{
	dlist_node	node;			/* in all_transfers */
	CURL	   *easy;
	struct curl_slist *headers;
	char	   *method;			/* malloc'd copies, for messages */
	char	   *url;
	bool		in_multi;
	UsageXferState state;

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

/*
 * Bumped whenever transaction end releases every transfer, so that an owner
 * whose memory is cleaned up later can tell its pointer is stale.
 */
static uint64 generation = 1;

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

	if (n >= 5 && strncmp(buffer, "HTTP/", 5) == 0)
	{
		free(x->retry_after);
		x->retry_after = NULL;
	}
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
 *		Set-up and clean-up
 * ----------------------------------------------------------------
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
			if (!dlist_is_empty(&all_transfers))
			{
				release_all_transfers();
				generation++;
			}
			break;
		default:
			break;
	}
}

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

static void
free_transfer(UsageTransfer *x)
{
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
	dlist_delete(&x->node);
	free(x);
}

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

uint64
usage_http_generation(void)
{
	return generation;
}

/*
 * Release a transfer: stops it if still running.  Safe on NULL.
 */
void
usage_http_release(UsageTransfer *xfer)
{
	if (xfer != NULL)
		free_transfer(xfer);
}

/* ----------------------------------------------------------------
 *		Starting transfers
 * ----------------------------------------------------------------
 */

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

static void
build_headers(UsageTransfer *x, const UsageHttpRequest *req, const char *bearer)
{
	struct curl_slist *h = NULL;
	char	   *auth;

	curl_slist_free_all(x->headers);
	x->headers = NULL;
	h = append_header(x, h, "Accept: application/json");
	x->headers = h;
	if (req->body)
	{
		char	   *ct = psprintf("Content-Type: %s",
								  req->content_type ? req->content_type : "application/json");

		x->headers = h = append_header(x, h, ct);
		pfree(ct);
		/* no "Expect: 100-continue" round trip */
		x->headers = h = append_header(x, h, "Expect:");
	}
	if (bearer)
	{
		auth = psprintf("Authorization: Bearer %s", bearer);
		x->headers = h = append_header(x, h, auth);
		/* do not leave the token lying around in palloc'd memory */
		explicit_bzero(auth, strlen(auth));
		pfree(auth);
	}
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
}

static void
start_attempt(UsageTransfer *x)
{
	CURLMcode	mc;

	x->len = 0;
	if (x->buf)
		x->buf[0] = '\0';
	x->too_large = false;
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
 * Create and start a transfer.  It is owned by the caller, who must
 * usage_http_release() it (transaction end does so as a last resort).
 */
UsageTransfer *
usage_http_start(const UsageHttpRequest *req, UsageHttpStats *stats)
{
	UsageOptions *opts = req->opts;
	UsageTransfer *x;

	ensure_multi();

	x = calloc(1, sizeof(UsageTransfer));
	if (x == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	dlist_push_tail(&all_transfers, &x->node);
	x->method = strdup(req->method);
	x->url = strdup(req->url);
	x->easy = curl_easy_init();
	if (x->method == NULL || x->url == NULL || x->easy == NULL)
	{
		free_transfer(x);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	x->stats = stats;
	x->max_retries = opts->max_retries;
	x->timeout_ms = opts->timeout_ms;

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

	build_headers(x, req, req->bearer);
	start_attempt(x);
	return x;

setopt_failed:
	free_transfer(x);
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("could not configure HTTP request"),
			 errdetail("libcurl refused an option; it may be too old.")));
	return NULL;				/* keep compiler quiet */
}

/*
 * Send a finished transfer again with another bearer token (after a 401 and
 * a token refresh).  The retry counter is not reset.
 */
void
usage_http_restart(UsageTransfer *xfer, const char *bearer)
{
	UsageHttpRequest req = {0};

	Assert(xfer->state == USAGE_XFER_DONE);
	if (xfer->in_multi)
	{
		curl_multi_remove_handle(multi, xfer->easy);
		xfer->in_multi = false;
	}
	/* the body and content type headers are already set; rebuild */
	req.body = strcmp(xfer->method, "POST") == 0 ? "" : NULL;
	{
		/* find the content type we sent the first time */
		const char *ct = NULL;

		for (struct curl_slist *h = xfer->headers; h; h = h->next)
			if (pg_strncasecmp(h->data, "Content-Type: ", 14) == 0)
				ct = h->data + 14;
		req.content_type = ct ? pstrdup(ct) : NULL;
	}
	build_headers(xfer, &req, bearer);
	start_attempt(xfer);
}

/* ----------------------------------------------------------------
 *		Completion and retries
 * ----------------------------------------------------------------
 */

static bool
retryable_curl_error(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return true;
		default:
			return false;
	}
}

static bool
retryable_status(long status)
{
	return status == 429 || status == 500 || status == 502 ||
		status == 503 || status == 504;
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
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
		x->content_type = strdup(ct);
	if (x->stats)
		x->stats->bytes += x->len;
	curl_multi_remove_handle(multi, x->easy);
	x->in_multi = false;
	x->state = USAGE_XFER_DONE;

	if (x->too_large)
		return;
	if (!(rc != CURLE_OK ? retryable_curl_error(rc) : retryable_status(x->status)))
		return;
	if (x->attempts > x->max_retries)
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
#if PG_VERSION_NUM >= 170000
		set = CreateWaitEventSet(NULL, nsockets + 2);
#else
		set = CreateWaitEventSet(CurrentMemoryContext, nsockets + 2);
#endif
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
							   PG_WAIT_EXTENSION);
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
 * Wait once for network activity, a timer, a retry becoming due, or the
 * latch, then let libcurl do its work.  Interrupts are checked.
 */
static void
http_step(long max_wait_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	long		timeout = max_wait_ms;
	dlist_iter	iter;
	WaitEvent	occurred[64];
	int			nev = 0;
	bool		latch_set = false;
	bool		timed_out;
	instr_time	start,
				end;
	int			running;

	CHECK_FOR_INTERRUPTS();
	ensure_multi();
	start_due_retries(now);

	if (curl_timer_set)
		timeout = Min(timeout, ms_until(now, curl_timer_at));
	dlist_foreach(iter, &all_transfers)
	{
		UsageTransfer *x = dlist_container(UsageTransfer, node, iter.cur);

		if (x->state == USAGE_XFER_WAITING)
			timeout = Min(timeout, ms_until(now, x->not_before));
	}

	INSTR_TIME_SET_CURRENT(start);
	nev = wait_for_events(timeout, occurred, lengthof(occurred));
	INSTR_TIME_SET_CURRENT(end);
	INSTR_TIME_SUBTRACT(end, start);

	/* the wait counts for every scan that has a transfer under way */
	{
		UsageHttpStats *charged[16];
		int			ncharged = 0;

		dlist_foreach(iter, &all_transfers)
		{
			UsageTransfer *x = dlist_container(UsageTransfer, node, iter.cur);
			bool		seen = false;

			if (x->stats == NULL || x->state == USAGE_XFER_DONE)
				continue;
			for (int i = 0; i < ncharged && !seen; i++)
				seen = charged[i] == x->stats;
			if (seen)
				continue;
			x->stats->wait_ms += INSTR_TIME_GET_MILLISEC(end);
			if (ncharged < lengthof(charged))
				charged[ncharged++] = x->stats;
		}
	}

	timed_out = (nev == 0);
	for (int i = 0; i < nev; i++)
	{
		WaitEvent  *e = &occurred[i];

		if (e->events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			latch_set = true;
			continue;
		}
		if (e->events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
		{
			int			mask = 0;

			if (e->events & WL_SOCKET_READABLE)
				mask |= CURL_CSELECT_IN;
			if (e->events & WL_SOCKET_WRITEABLE)
				mask |= CURL_CSELECT_OUT;
			curl_multi_socket_action(multi, e->fd, mask, &running);
		}
	}
	if (timed_out ||
		(curl_timer_set && curl_timer_at <= GetCurrentTimestamp()))
		curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);

	process_completions();

	if (latch_set)
		CHECK_FOR_INTERRUPTS();
}

/*
 * Drive all transfers until xfer is done (succeeded, or failed for good).
 */
void
usage_http_wait(UsageTransfer *xfer)
{
	while (xfer->state != USAGE_XFER_DONE)
		http_step(WAIT_SLICE_MS);
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

bool
usage_http_is_done(UsageTransfer *xfer)
{
	return xfer->state == USAGE_XFER_DONE;
}

long
usage_http_status(UsageTransfer *xfer)
{
	return xfer->result == CURLE_OK ? xfer->status : 0;
}

const char *
usage_http_body(UsageTransfer *xfer, size_t *len)
{
	*len = xfer->len;
	return xfer->buf ? xfer->buf : "";
}

const char *
usage_http_content_type(UsageTransfer *xfer)
{
	return xfer->content_type;
}

const char *
usage_http_url(UsageTransfer *xfer)
{
	return xfer->url;
}

int
usage_http_running_count(void)
{
	dlist_iter	iter;
	int			n = 0;

	dlist_foreach(iter, &all_transfers)
	{
		UsageTransfer *x = dlist_container(UsageTransfer, node, iter.cur);

		if (x->state != USAGE_XFER_DONE)
			n++;
	}
	return n;
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
 * it with an encoding error.  Control characters become spaces.  At most
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

	if (s == NULL)
		return pstrdup("");

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
	if (i < len)
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


/*
 * The extension's own words for a transport failure, the same with every
 * libcurl version (libcurl's texts change between releases; its own
 * message goes to the server log).
 */
static const char *
transport_failure_text(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_COULDNT_CONNECT:
			return "could not connect to the server";
		case CURLE_COULDNT_RESOLVE_HOST:
			return "could not resolve the server's host name";
		case CURLE_COULDNT_RESOLVE_PROXY:
			return "could not resolve the proxy's host name";
		case CURLE_OPERATION_TIMEDOUT:
			return "timed out";
		case CURLE_SEND_ERROR:
			return "could not send the request";
		case CURLE_RECV_ERROR:
			return "could not receive the response";
		case CURLE_GOT_NOTHING:
			return "the server closed the connection without an answer";
		case CURLE_PARTIAL_FILE:
			return "the connection closed before the whole response arrived";
		case CURLE_SSL_CONNECT_ERROR:
			return "the TLS handshake failed";
		default:
			return curl_easy_strerror(rc);
	}
}
/*
 * ereport the final failure of a transfer.  what names the caller's
 * context, e.g. "request for foreign table usage.t".
 */
void
usage_http_report_failure(UsageTransfer *x, const char *what)
{
	const char *rawpath = url_path(x->url);
	const char *path = usage_api_text(rawpath, strlen(rawpath), 2000);
	int			tries = x->attempts;
	char	   *detail = NULL;
	char	   *curl_text = NULL;

	/*
	 * Everything an ereport below shows is computed first: api_detail() may
	 * catch and discard an encoding error (usage_json_get_string), which
	 * must not happen while an ereport is being built.
	 */
	if (x->result != CURLE_OK)
	{
		const char *err = x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result);

		curl_text = usage_api_text(err, strlen(err), API_TEXT_MAX_BYTES);
	}
	else if (!x->too_large)
		detail = api_detail(x);

	if (x->too_large)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("response to %s %s is larger than the limit of %d MiB",
						x->method, path, USAGE_MAX_RESPONSE_BYTES / (1024 * 1024)),
				 errcontext("%s", what)));

	if (x->result != CURLE_OK)
	{
		switch (x->result)
		{
			case CURLE_COULDNT_CONNECT:
			case CURLE_COULDNT_RESOLVE_HOST:
			case CURLE_COULDNT_RESOLVE_PROXY:
			case CURLE_OPERATION_TIMEDOUT:
			case CURLE_SEND_ERROR:
			case CURLE_RECV_ERROR:
			case CURLE_GOT_NOTHING:
			case CURLE_PARTIAL_FILE:
			case CURLE_SSL_CONNECT_ERROR:
				ereport(ERROR,
						(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
						 errmsg_plural("%s %s failed after %d attempt: %s",
									   "%s %s failed after %d attempts: %s",
									   tries, x->method, path, tries,
									   transport_failure_text(x->result)),
						 errdetail("The last attempt ended with libcurl error code %d.",
								   (int) x->result),
						 errdetail_log("libcurl reported: %s.", curl_text),
						 errhint("Check base_url, the network, proxy and timeout_ms / max_retries of the server."),
						 errcontext("%s", what)));
				break;
			case CURLE_PEER_FAILED_VERIFICATION:
#if LIBCURL_VERSION_NUM < 0x073e00
			case CURLE_SSL_CACERT:
#endif
			case CURLE_SSL_CACERT_BADFILE:
				ereport(ERROR,
						(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
						 errmsg("%s %s failed: the server's TLS certificate could not be verified",
								x->method, path),
						 errdetail("The last attempt ended with libcurl error code %d.",
								   (int) x->result),
						 errdetail_log("libcurl reported: %s.", curl_text),
						 errhint("Use the server option ca_file to trust a private certificate authority."),
						 errcontext("%s", what)));
				break;
			default:
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("%s %s failed: %s", x->method, path,
								curl_easy_strerror(x->result)),
						 errdetail("libcurl reported: %s.", curl_text),
						 errcontext("%s", what)));
		}
	}

	if (x->status == 401 || x->status == 403)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("%s %s was refused with HTTP %ld",
						x->method, path, x->status),
				 errdetail("%s", detail),
				 errhint("Check the credentials in the user mapping and the permissions of the API application."),
				 errcontext("%s", what)));

	if (x->retry_after_s >= 0)
	{
		char	   *value = usage_api_text(x->retry_after, strlen(x->retry_after), 60);

		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("%s %s failed with HTTP %ld and \"Retry-After: %s\", a longer wait than the %d s this client accepts",
						x->method, path, x->status, value,
						Max(x->timeout_ms, RETRY_AFTER_CAP_MS) / 1000),
				 errdetail("%s", detail),
				 errhint("Retry the query later.  A Retry-After of up to %d s (or timeout_ms, if longer) is waited for.",
						 RETRY_AFTER_CAP_MS / 1000),
				 errcontext("%s", what)));
	}

	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg_plural("%s %s failed with HTTP %ld after %d attempt",
						   "%s %s failed with HTTP %ld after %d attempts",
						   tries, x->method, path, x->status, tries),
			 errdetail("%s", detail),
			 errcontext("%s", what)));
}
