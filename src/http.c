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
void
usage_http_free_transfer(UsageTransfer *x)
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

		usage_http_free_transfer(x);
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
		usage_http_free_transfer(*owner);
	Assert(*owner == NULL);
}

/*
 * Move a transfer from one owner slot to another (which must be empty).
 */
void
usage_http_move(UsageTransfer **from, UsageTransfer **to)
{
	Assert(*to == NULL);
	*to = *from;
	*from = NULL;
	if (*to != NULL)
		(*to)->owner = to;
}

/* ----------------------------------------------------------------
 *		Starting transfers
 * ----------------------------------------------------------------
 */

/*
 * Start an attempt of a transfer: forget the previous attempt's outcome and
 * hand the easy handle to the multi handle.
 */
static void
start_attempt(UsageTransfer *x)
{
	CURLMcode	mc;

	x->len = 0;
	x->taken = 0;
	x->received = 0;
	x->paused = false;
	x->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											  x->timeout_ms);
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
	usage_http_note_secret(req->opts->client_key_passphrase);

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
		usage_http_free_transfer(x);
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

	if (!usage_http_set_options(x, req))
	{
		usage_http_free_transfer(x);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not configure HTTP request"),
				 errdetail("libcurl refused an option; it may be too old.")));
	}
	usage_http_build_headers(x);
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
	usage_http_build_headers(x);
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
	if (x->content_type == NULL &&
		curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
		x->content_type = strdup(ct);
	if (x->stats)
		x->stats->bytes += x->received;
	curl_multi_remove_handle(multi, x->easy);
	x->in_multi = false;
	x->state = USAGE_XFER_DONE;

	/* rows of a body being read as it came are out: no second attempt */
	if (x->streaming || !usage_http_classify(x).retryable ||
		x->attempts > x->max_retries)
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

/*
 * End the attempts whose timeout_ms is over (time paused by write_cb not
 * counted), as libcurl's own CURLOPT_TIMEOUT_MS would.
 */
static void
check_deadlines(TimestampTz now)
{
	dlist_iter	iter;

	dlist_foreach(iter, &all_transfers)
	{
		UsageTransfer *x = dlist_container(UsageTransfer, node, iter.cur);

		if (x->state != USAGE_XFER_RUNNING || x->paused || now < x->deadline)
			continue;
		snprintf(x->errbuf, sizeof(x->errbuf),
				 "Operation timed out after %d milliseconds with %zu bytes received",
				 x->timeout_ms, x->received);
		finish_attempt(x, CURLE_OPERATION_TIMEDOUT);
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
		else if (x->state == USAGE_XFER_RUNNING && !x->paused)
			timeout = Min(timeout, ms_until(now, x->deadline));
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
	check_deadlines(GetCurrentTimestamp());
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

/*
 * Can a reader start on the transfer's body: it is done (succeeded, or
 * failed for good), or its response is a 200 of which at least min_bytes
 * have come (fewer when the response is done).
 */
bool
usage_http_readable(UsageTransfer *xfer, size_t min_bytes)
{
	long		code = 0;

	if (xfer->state == USAGE_XFER_DONE)
		return true;
	if (xfer->state != USAGE_XFER_RUNNING ||
		xfer->len - xfer->taken < Max(min_bytes, 1))
		return false;
	curl_easy_getinfo(xfer->easy, CURLINFO_RESPONSE_CODE, &code);
	return code == 200;
}

/*
 * Drive all transfers until a reader can start on xfer's body (see
 * usage_http_readable).  A 401 is sent again with a new token first, when
 * that can be had.
 */
void
usage_http_wait_readable(UsageTransfer *xfer, size_t min_bytes)
{
	do
	{
		while (!usage_http_readable(xfer, min_bytes))
			http_step(WAIT_SLICE_MS);
	} while (refresh_bearer(xfer));
}

/*
 * Take up to max_bytes of the body bytes of a readable transfer that have
 * come so far: *data and *len, valid until the next call into the HTTP
 * client; *final when they are the last (check usage_http_failure() first).
 * Waits for more when none are there.  From the first take on, the transfer
 * is not tried again (the reader has the start of this attempt's body), and
 * it is paused while STREAM_BUFFER_BYTES wait for the reader.
 */
void
usage_http_take(UsageTransfer *xfer, size_t max_bytes, const char **data,
				size_t *len, bool *final)
{
	xfer->streaming = true;
	if (xfer->taken == xfer->len)
		xfer->taken = xfer->len = 0;
	if (xfer->paused && xfer->len - xfer->taken < STREAM_BUFFER_BYTES / 2)
	{
		/*
		 * May call write_cb at once, with the bytes it paused on; then let
		 * libcurl read on at once rather than at the end of a wait slice.
		 */
		TimestampTz now = GetCurrentTimestamp();

		xfer->paused = false;
		xfer->deadline += now - xfer->paused_at;
		curl_easy_pause(xfer->easy, CURLPAUSE_CONT);
		http_step(0);
	}
	while (xfer->len == xfer->taken && xfer->state != USAGE_XFER_DONE)
		http_step(WAIT_SLICE_MS);
	*data = xfer->buf ? xfer->buf + xfer->taken : "";
	*len = Min(xfer->len - xfer->taken, max_bytes);
	xfer->taken += *len;
	*final = xfer->state == USAGE_XFER_DONE && xfer->taken == xfer->len;
}

/*
 * The end of the body of a transfer that is done and succeeded: the bytes
 * not yet taken (*data, *len; valid until the next call into the HTTP
 * client).  False when it is not done, or failed.
 */
bool
usage_http_unread_end(UsageTransfer *xfer, const char **data, size_t *len)
{
	if (xfer->state != USAGE_XFER_DONE ||
		usage_http_failure(xfer) != USAGE_FAIL_NONE || xfer->buf == NULL)
		return false;
	*data = xfer->buf + xfer->taken;
	*len = xfer->len - xfer->taken;
	return true;
}

/*
 * The Content-Type of the response, or NULL when it had none (also of a
 * response still coming, see usage_http_readable).
 */
const char *
usage_http_content_type(UsageTransfer *xfer)
{
	char	   *ct = NULL;

	if (xfer->content_type == NULL && xfer->state == USAGE_XFER_RUNNING &&
		curl_easy_getinfo(xfer->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK &&
		ct != NULL)
		xfer->content_type = strdup(ct);
	return xfer->content_type;
}

