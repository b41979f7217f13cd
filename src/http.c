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
 * Retries: usage_http_classify() (http_report.c) is the one classification
 * of failures.  Connection failures, timeouts, truncated bodies and HTTP
 * 429, 500, 502, 503, 504 are retried up to max_retries times.  A 401 is sent once more with a new
 * bearer token when the request's bearer source can get one.  A retry never
 * follows at once: it waits an exponential backoff with jitter (about
 * 0.1-0.2 s at first, doubling, capped), or longer when the server asks so
 * with a usable Retry-After (seconds or HTTP date).  An unparsable
 * Retry-After is ignored (the backoff applies); one asking for more than
 * RETRY_AFTER_CAP_MS (or timeout_ms, if longer) fails at once.
 *
 * Text that comes from an API (error bodies, messages, header values) goes
 * through usage_api_text() (redact.c) before it reaches an error message;
 * http_report.c words the failures.  http_int.h is what the three share.
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

#include "http_int.h"

/* longest single wait, so that interrupts are always checked promptly */
#define WAIT_SLICE_MS 100
/* backoff: first retry after ~BACKOFF_BASE_MS, doubling, capped */
#define BACKOFF_BASE_MS 200
#define BACKOFF_MAX_MS 10000
/* longest Retry-After value kept (a longer one is not a usable value) */
#define RETRY_AFTER_MAX_LEN 128
/* libcurl's code for oversized headers, where it has one */
#if LIBCURL_VERSION_NUM >= 0x080600
#define USAGE_CURLE_TOO_LARGE CURLE_TOO_LARGE
#else
#define USAGE_CURLE_TOO_LARGE CURLE_OUT_OF_MEMORY
#endif



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
			usage_http_forget_secrets();
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

	if (!usage_http_classify(x).retryable || x->attempts > x->max_retries)
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
	return usage_http_classify(xfer).failure;
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

