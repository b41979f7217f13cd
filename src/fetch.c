/*-------------------------------------------------------------------------
 *
 * fetch.c
 *		  The call engine: the calls of a scan, the max_concurrency window,
 *		  pages and nextLink, the parse into rows, totals.
 *
 * A call is one combination of parameter values (see usage_fdw.h's
 * glossary).  The calls run up to max_concurrency at a time in a window
 * ahead of the one being read; for a paged endpoint the next page is
 * requested as soon as the current one has all come and its body's end
 * names it (checked against the parse), or else when the current one is
 * parsed, so at most one page is fetched ahead of what the executor
 * consumes.  Rows come out in call, page and item order, each with its
 * call's tag.
 *
 * Ownership: each call owns the transfer of its page in flight, and of the
 * page it requested ahead (owner slots of http.c).  The engine's memory context (one per scan, reset at
 * each rescan) holds the calls; its reset callback releases their
 * transfers first, on reset, end, and error alike.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/int.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "fetch.h"

/*
 * Rows are formed in batches of up to this much memory (then reused for
 * the next): a page of 1,000 rows is one batch, so that its next page is
 * requested as soon as it is read; a body of 100,000 rows is many.
 */
#define BATCH_BYTES (1024 * 1024)
/* the body is handed to the parser in pieces of at most this much */
#define FEED_BYTES (64 * 1024)
/*
 * A page is read as it comes once this much of it is there (a smaller one
 * is read when complete, in one piece, and may still be tried again if it
 * fails).  Well below USAGE_STREAM_BUFFER_BYTES, where a body waits
 * paused (at most that much minus one piece from libcurl).
 */
#define STREAM_START_BYTES (USAGE_STREAM_BUFFER_BYTES / 2)

/* one call: a combination of parameter values, and its pages */
typedef struct UsageCall
{
	UsageValueSet *sets;		/* the values it chooses from */
	int		   *choice;			/* per parameter: index into its values */
	int			tag;			/* the caller's: a batched join's key tuple */
	Datum	   *echo;			/* per attribute: echo value */
	bool	   *echo_null;
	char	   *url;			/* of the page requested last */
	char	   *body;			/* of the requests, or NULL */
	UsageTransfer *xfer;		/* owner slot: page in flight or done, not
								 * yet parsed (the calls array does not move
								 * once a call has started) */
	UsageTransfer *ahead;		/* owner slot: the next page, requested on
								 * the guess of request_ahead, or NULL */
	char	   *ahead_url;		/* its URL (in the parse context) */
	bool		total_counted;	/* its totalCount was added to the totals */
	int64		npages;			/* pages parsed */
	HTAB	   *followed;		/* URLs of its pages read so far, from the
								 * second page on (usage_next_page_url) */
} UsageCall;

/*
 * Where the engine is in a response, for the error context of the errors
 * raised while a page is parsed and its values converted.
 */
typedef struct UsageConvLocation
{
	const char *url;			/* the page being parsed, or NULL */
	int			col;			/* the column being converted, or -1 */
	const char *value;			/* its text in the response */
} UsageConvLocation;

struct UsageFetch
{
	UsageOptions *opts;
	const UsageEndpoint *ep;
	UsageColumn *cols;
	TupleDesc	tupdesc;
	int			natts;
	const char *what;			/* for error messages */
	const UsageBearerSource *bearer;	/* of the requests */

	MemoryContext call_cxt;		/* per (re)scan: calls, value sets */
	MemoryContext parse_cxt;	/* the parser of the page being read */
	MemoryContext page_cxt;		/* the rows being returned */
	MemoryContextCallback cleanup;

	/* per (re)scan */
	int			ncalls;
	int			maxcalls;
	UsageCall  *calls;
	int			cur_call;		/* call whose rows are being returned */
	int			next_start;		/* first call not yet started */
	UsageCall  *filling;		/* call whose page is being parsed */
	UsageRowParser *parser;		/* its parser, or NULL between pages */
	bool		parser_ahead;	/* it stopped at a full batch, not for want
								 * of bytes */
	bool		guessed;		/* request_ahead looked at its page's end */
	HeapTuple  *rows;
	int			nrows;
	int			maxrows;
	int			next_row;
	Datum	   *dvalues;
	bool	   *dnulls;
	HeapTuple	null_row;		/* when the query reads no column: the row
								 * of all NULLs every row is */
	UsageConvLocation conv;		/* for the error context */

	UsageFetchStats stats;		/* over all (re)scans */
};

/*
 * Can the combination of values hold?  A pair of points in time where one
 * must not come after the other (startDate after endDate) cannot: the API
 * would refuse it, and no row could satisfy the query's clauses.
 */
static bool
combination_holds(const UsageEndpoint *ep, const UsageValueSet *sets,
				  const int *choice)
{
	for (int p = 0; p < ep->nparams; p++)
	{
		int			q;

		if (ep->params[p].not_after == NULL || !sets[p].sent ||
			(q = usage_find_param_by_key(ep, ep->params[p].not_after)) < 0 ||
			!sets[q].sent)
			continue;
		if (sets[p].values[choice[p]].num > sets[q].values[choice[q]].num)
			return false;
	}
	return true;
}

/* The k-th combination of values, the last parameter varying fastest. */
static void
combination(const UsageEndpoint *ep, const UsageValueSet *sets, int k,
			int *choice)
{
	for (int p = ep->nparams - 1; p >= 0; p--)
	{
		int			nv = Max(sets[p].nvalues, 1);

		choice[p] = k % nv;
		k /= nv;
	}
}

/*
 * Add the calls of one set of values: one per combination that can hold,
 * each with the caller's tag (a batched join's key tuple, or -1).  The
 * sets must live as long as the calls (usage_fetch_memory).  More than
 * USAGE_MAX_REQUESTS_PER_SCAN calls in a (re)scan is an error.
 */
void
usage_fetch_add(UsageFetch *f, UsageValueSet *sets, bool empty, int tag)
{
	const UsageEndpoint *ep = f->ep;
	double		n = empty ? 0 : 1;

	for (int p = 0; p < ep->nparams && n > 0; p++)
		n *= Max(sets[p].nvalues, 1);
	if (f->ncalls + n > USAGE_MAX_REQUESTS_PER_SCAN)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the query on foreign table %s would need %.0f requests, more than the limit of %d",
						f->opts->table_name, f->ncalls + n, USAGE_MAX_REQUESTS_PER_SCAN),
				 errhint("Narrow the IN lists of the WHERE clause.")));
	if (n == 0)
		return;
	if (f->ncalls + (int) n > f->maxcalls)
	{
		f->maxcalls = Max(f->ncalls + (int) n, f->maxcalls * 2);
		f->calls = f->calls ?
			repalloc(f->calls, sizeof(UsageCall) * f->maxcalls) :
			palloc(sizeof(UsageCall) * f->maxcalls);
	}
	for (int k = 0; k < (int) n; k++)
	{
		UsageCall  *call = &f->calls[f->ncalls];

		memset(call, 0, sizeof(UsageCall));
		call->sets = sets;
		call->tag = tag;
		call->choice = palloc0(sizeof(int) * ep->nparams);
		combination(ep, sets, k, call->choice);
		if (combination_holds(ep, sets, call->choice))
			f->ncalls++;
	}
}

/*
 * The calls one set of values makes: its combinations that can hold (as
 * usage_fetch_add lays them out).
 */
double
usage_fetch_count_calls(const UsageEndpoint *ep, UsageValueSet *sets, bool empty)
{
	double		n = empty ? 0 : 1;
	int		   *choice = palloc(sizeof(int) * Max(ep->nparams, 1));
	double		holding = 0;

	for (int p = 0; p < ep->nparams && n > 0; p++)
		n *= Max(sets[p].nvalues, 1);
	if (n > USAGE_MAX_REQUESTS_PER_SCAN)
		return n;
	for (int k = 0; k < (int) n; k++)
	{
		combination(ep, sets, k, choice);
		if (combination_holds(ep, sets, choice))
			holding++;
	}
	return holding;
}

/* Request the page url of a call, into the owner slot *slot. */
static void
send_request(UsageFetch *f, UsageCall *call, const char *url,
			 UsageTransfer **slot)
{
	UsageHttpRequest req = {0};

	req.method = f->ep->method;
	req.url = url;
	req.body = call->body;
	req.content_type = "application/json";
	req.opts = f->opts;
	req.bearer = f->bearer;
	/* the bearer token travels in a header only and is never logged */
	elog(DEBUG1, "usage_fdw: %s %s%s%s%s", req.method, req.url,
		 req.body ? " " : "", req.body ? req.body : "",
		 slot == &call->ahead ? " (ahead)" : "");
	usage_http_start(&req, &f->stats.http, slot);
	f->stats.pages++;
	/* get it on the wire now, not when we next wait */
	usage_http_poll();
}

/* Request the page call->url of a call; the call owns the transfer. */
static void
send_page(UsageFetch *f, UsageCall *call)
{
	send_request(f, call, call->url, &call->xfer);
}

/*
 * request_ahead
 *		Once the page being read has all come, request the next page that
 *		the end of its body names (usage_json_link_at_end) while the rest of
 *		the page is parsed, if the checks of usage_next_page_url would let
 *		it through.
 *
 * Only a guess: finish_page keeps this request if the parse gives the
 * same next page, and drops it otherwise.  Once per page.
 */
static void
request_ahead(UsageFetch *f, UsageCall *call)
{
	const char *data;
	size_t		len;
	char	   *link;
	MemoryContext old;

	if (f->guessed || f->ep->paging != USAGE_PAGING_NEXTLINK ||
		!usage_http_unread_end(call->xfer, &data, &len))
		return;
	f->guessed = true;
	Assert(call->ahead == NULL);
	/* it goes with the page's parser */
	old = MemoryContextSwitchTo(f->parse_cxt);
	link = usage_json_link_at_end(f->ep, data, len);
	call->ahead_url = usage_next_page_guess(f->opts, call->url, link,
											call->npages + 1, call->followed);
	MemoryContextSwitchTo(old);
	if (call->ahead_url != NULL)
		send_request(f, call, call->ahead_url, &call->ahead);
}

static void
start_call(UsageFetch *f, int k)
{
	UsageCall  *call = &f->calls[k];
	MemoryContext old = MemoryContextSwitchTo(f->call_cxt);

	call->echo = palloc0(sizeof(Datum) * Max(f->natts, 1));
	call->echo_null = palloc0(sizeof(bool) * Max(f->natts, 1));
	for (int i = 0; i < f->natts; i++)
	{
		UsageColumn *c = &f->cols[i];
		UsageValueSet *set;

		if (c->kind != USAGE_COL_ECHO)
			continue;
		set = &call->sets[c->param];
		if (set->values == NULL)
			call->echo_null[i] = true;
		else
		{
			UsageValue *v = &set->values[call->choice[c->param]];

			call->echo[i] = v->echo;
			call->echo_null[i] = v->echo_isnull;
		}
	}

	usage_build_request(f->opts, call->sets, call->choice, &call->url,
						&call->body);
	MemoryContextSwitchTo(old);

	send_page(f, call);
}

/* keep up to max_concurrency requests started ahead of the one being read */
static void
fill_window(UsageFetch *f)
{
	while (f->next_start < f->ncalls &&
		   f->next_start - f->cur_call < f->opts->max_concurrency)
	{
		start_call(f, f->next_start);
		f->next_start++;
	}
}

/*
 * Error context of a page being parsed: the column and value being
 * converted (clipped), and the request the response answers (its path and
 * query, not the host).
 */
static void
conversion_error_callback(void *arg)
{
	UsageFetch *f = (UsageFetch *) arg;
	const UsageConvLocation *loc = &f->conv;

	if (loc->col >= 0)
	{
		const char *v = loc->value;

		errcontext("column \"%s\" of foreign table %s (endpoint %s), value \"%s%s\"",
				   f->cols[loc->col].name, f->opts->table_name, f->ep->name,
				   v ? pnstrdup(v, pg_mbcliplen(v, strlen(v), 200)) : "",
				   v && strlen(v) > 200 ? "..." : "");
	}
	if (loc->url)
	{
		const char *p = strstr(loc->url, "://");

		p = p ? strchr(p + 3, '/') : NULL;
		errcontext("response to %s %s for foreign table %s",
				   f->ep->method, p ? p : loc->url, f->opts->table_name);
	}
}

/*
 * One response item, its values as text per attribute, becomes a row of the
 * batch (echo columns from the request).
 */
static void
add_row(UsageFetch *f, char **values)
{
	UsageCall  *call = f->filling;

	if (f->nrows == f->maxrows)
	{
		f->maxrows = Max(64, f->maxrows * 2);
		f->rows = f->rows ? repalloc(f->rows, sizeof(HeapTuple) * f->maxrows)
			: palloc(sizeof(HeapTuple) * f->maxrows);
	}
	if (f->null_row)
	{
		/* the query reads no column (count(*), EXISTS): one row for all */
		f->rows[f->nrows++] = f->null_row;
		return;
	}
	for (int i = 0; i < f->natts; i++)
	{
		UsageColumn *c = &f->cols[i];

		switch (c->kind)
		{
			case USAGE_COL_DROPPED:
				f->dnulls[i] = true;
				break;
			case USAGE_COL_ECHO:
				f->dvalues[i] = call->echo[i];
				f->dnulls[i] = call->echo_null[i] || c->unread;
				break;
			case USAGE_COL_RESPONSE:
			case USAGE_COL_WHOLE_ITEM:
				if (values[i] == NULL || c->unread)
				{
					f->dnulls[i] = true;
					break;
				}
				f->conv.col = i;
				f->conv.value = values[i];
				f->dvalues[i] = InputFunctionCall(&c->inflinfo, values[i],
												   c->typioparam, c->typmod);
				f->dnulls[i] = false;
				f->conv.col = -1;
				break;
		}
	}
	f->rows[f->nrows++] = heap_form_tuple(f->tupdesc, f->dvalues, f->dnulls);
}

/*
 * Is the media type (the Content-Type before any parameter) JSON?
 * application/json or application/<x>+json, in any letter case (RFC 9110
 * 8.3.1), blanks around it ignored.
 */
static bool
json_media_type(const char *ct, const char *semi)
{
	size_t		mlen = semi ? (size_t) (semi - ct) : strlen(ct);
	char	   *media;

	while (mlen > 0 && (ct[mlen - 1] == ' ' || ct[mlen - 1] == '\t'))
		mlen--;
	while (mlen > 0 && (*ct == ' ' || *ct == '\t'))
		ct++, mlen--;
	media = pnstrdup(ct, mlen);

	return pg_strcasecmp(media, "application/json") == 0 ||
		(mlen > strlen("application/+json") &&
		 pg_strncasecmp(media, "application/", 12) == 0 &&
		 strchr(media + 12, '/') == NULL &&
		 pg_strcasecmp(media + mlen - 5, "+json") == 0);
}

/*
 * The value of the Content-Type parameter starting at name, if it is
 * charset: *value and *vend delimit it, quotes removed.
 */
static bool
charset_param(const char *name, const char **value, const char **vend)
{
	const char *v;
	const char *e;

	while (*name == ' ' || *name == '\t')
		name++;
	if (pg_strncasecmp(name, "charset", 7) != 0)
		return false;
	v = name + 7;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v != '=')
		return false;
	v++;
	while (*v == ' ' || *v == '\t')
		v++;
	e = strchr(v, ';');
	if (e == NULL)
		e = v + strlen(v);
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e - v >= 2 && *v == '"' && e[-1] == '"')
		v++, e--;
	*value = v;
	*vend = e;
	return true;
}

/*
 * check_content_type
 *		Refuse a response whose Content-Type is not JSON.
 *
 * Accepted: none at all, or a JSON media type (json_media_type).
 * Parameters are ignored except charset, which must be utf-8 (any case,
 * quoted or not) when given: JSON is UTF-8.  Called with the response's
 * error context in place.
 */
static void
check_content_type(UsageFetch *f, UsageTransfer *xfer)
{
	const char *ct = usage_http_content_type(xfer);
	const char *semi;

	if (ct == NULL)
		return;
	semi = strchr(ct, ';');
	if (!json_media_type(ct, semi))
	{
		size_t		len;
		const char *body = usage_http_body(xfer, &len);

		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("API response has content type \"%s\", expected application/json",
						usage_api_text(ct, strlen(ct), 200)),
				 errdetail("The response body starts with \"%s\".",
						   usage_api_text(body, len, 200))));
	}

	/* parameters: only charset matters */
	for (const char *p = semi; p != NULL; p = strchr(p + 1, ';'))
	{
		const char *value;
		const char *vend;

		if (!charset_param(p + 1, &value, &vend))
			continue;
		if (vend - value == 5 && pg_strncasecmp(value, "utf-8", 5) == 0)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("API response has charset \"%s\", expected utf-8",
						usage_api_text(value, vend - value, 100)),
				 errdetail("JSON responses must be encoded in UTF-8; the Content-Type was \"%s\".",
						   usage_api_text(ct, strlen(ct), 200))));
	}
}

/*
 * Add a page's totalCount to the scan's.  totalCount counts all pages of a
 * call: once per call.  The sum over a fan-out saturates instead of
 * wrapping around.
 */
static void
count_total(UsageFetch *f, UsageCall *call, const UsageParseResult *res)
{
	int64		sum;

	if (!res->has_total || call->total_counted)
		return;
	if (pg_add_s64_overflow(f->stats.total_count, res->total_count, &sum))
		sum = res->total_count > 0 ? PG_INT64_MAX : PG_INT64_MIN;
	f->stats.has_total = true;
	f->stats.total_count = sum;
	call->total_counted = true;
}

/*
 * open_page
 *		Wait until the call's page can be read (it is done, or a 200 of which
 *		STREAM_START_BYTES have come), fail unless it came with HTTP 200 and
 *		JSON, and set up a parser for it.
 *
 * http.c retries what is worth retrying, a 401 with a new token included.
 */
static void
open_page(UsageFetch *f, UsageCall *call)
{
	MemoryContext old;
	ErrorContextCallback errcb;

	usage_http_wait_readable(call->xfer, STREAM_START_BYTES);
	if (usage_http_is_done(call->xfer) &&
		usage_http_failure(call->xfer) != USAGE_FAIL_NONE)
		usage_http_report_failure(call->xfer, f->what);

	f->conv.url = call->url;
	errcb.callback = conversion_error_callback;
	errcb.arg = f;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	check_content_type(f, call->xfer);
	error_context_stack = errcb.previous;
	f->conv.url = NULL;

	MemoryContextReset(f->parse_cxt);
	old = MemoryContextSwitchTo(f->parse_cxt);
	f->parser = usage_row_parser_create(f->ep, f->cols, f->natts);
	MemoryContextSwitchTo(old);
	f->filling = call;
	f->guessed = false;
}

/*
 * Feed the parser the bytes of the page that have come (waiting for some),
 * failing if the transfer failed on the way.
 */
static void
feed_parser(UsageFetch *f, UsageCall *call)
{
	const char *data;
	size_t		len;
	bool		final;
	const char *url = f->conv.url;

	f->conv.url = NULL;			/* a transfer's failure names its request */
	request_ahead(f, call);
	usage_http_take(call->xfer, FEED_BYTES, &data, &len, &final);
	if (final && usage_http_failure(call->xfer) != USAGE_FAIL_NONE)
		usage_http_report_failure(call->xfer, f->what);
	f->conv.url = url;
	usage_row_parser_feed(f->parser, data, len, final);
}

/*
 * The page is done: count its total, release its transfer, and request
 * the call's next page, if any, so that it downloads while the executor
 * consumes the rows of this one (or keep the one request_ahead sent, if
 * it is that page).
 */
static void
finish_page(UsageFetch *f, UsageCall *call)
{
	const UsageParseResult *res = usage_row_parser_result(f->parser);
	char	   *next_url;

	call->npages++;
	count_total(f, call, res);
	usage_http_release(&call->xfer);
	next_url = usage_next_page_url(f->opts, call->url, res->next_link,
								   call->npages, &call->followed, f->call_cxt);
	f->parser = NULL;
	if (next_url && call->ahead && strcmp(next_url, call->ahead_url) == 0)
		usage_http_move(&call->ahead, &call->xfer);
	/* a guess that the parse did not confirm */
	usage_http_release(&call->ahead);
	call->ahead_url = NULL;
	if (next_url)
	{
		call->url = next_url;
		if (call->xfer == NULL)
			send_page(f, call);
	}
}

/*
 * read_rows
 *		The next rows of the call's page into f->rows: up to ROWS_PER_BATCH,
 *		fewer when the page ends or no more have come yet.
 *
 * Every error about the response names it (conversion_error_callback).
 */
static void
read_rows(UsageFetch *f, UsageCall *call)
{
	MemoryContext old;
	ErrorContextCallback errcb;

	MemoryContextReset(f->page_cxt);
	f->rows = NULL;
	f->nrows = f->maxrows = f->next_row = 0;
	f->parser_ahead = false;
	f->conv.url = call->url;
	errcb.callback = conversion_error_callback;
	errcb.arg = f;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	old = MemoryContextSwitchTo(f->page_cxt);
	for (;;)
	{
		char	  **values;
		UsageParseStep step = usage_row_parser_next(f->parser, &values);

		if (step == USAGE_PARSE_ROW)
		{
			add_row(f, values);
			if ((f->nrows & 63) == 0 &&
				MemoryContextMemAllocated(f->page_cxt, false) > BATCH_BYTES)
			{
				f->parser_ahead = true;
				break;
			}
		}
		else if (step == USAGE_PARSE_DONE)
		{
			finish_page(f, call);
			break;
		}
		else if (f->nrows > 0)
			break;				/* these first, then wait for more */
		else
			feed_parser(f, call);
	}
	MemoryContextSwitchTo(old);

	error_context_stack = errcb.previous;
	f->conv.url = NULL;
}

/*
 * next_rows
 *		Read the next rows into f->rows.  Returns false at the end of the
 *		calls.
 *
 * Takes the calls in order, each page of the current call in turn, while
 * up to max_concurrency calls ahead of it are under way.
 */
static bool
next_rows(UsageFetch *f)
{
	while (f->cur_call < f->ncalls)
	{
		UsageCall  *call;

		fill_window(f);
		call = &f->calls[f->cur_call];
		if (f->parser == NULL && call->xfer == NULL)
		{
			/* all pages of this call are done */
			if (call->followed)
				hash_destroy(call->followed);
			call->followed = NULL;
			f->cur_call++;
			continue;
		}
		if (f->parser == NULL)
			open_page(f, call);
		read_rows(f, call);
		if (f->nrows > 0)
			return true;
	}
	return false;
}

/*
 * Release the transfers of the calls.  (Those that transaction end released
 * already have their slots cleared.)
 */
static void
release_calls(UsageFetch *f)
{
	for (int i = 0; i < f->ncalls && f->calls; i++)
	{
		usage_http_release(&f->calls[i].xfer);
		usage_http_release(&f->calls[i].ahead);
	}
}

/*
 * The call context is reset or deleted (rescan, end of scan, error): stop
 * the transfers before the calls holding their owner slots go.
 */
static void
call_cxt_cleanup(void *arg)
{
	release_calls((UsageFetch *) arg);
}

/*
 * When the query reads none of the columns (see UsageColumn.unread), the
 * row of all NULLs that stands for every row; else NULL.
 */
static HeapTuple
make_null_row(UsageFetch *f, MemoryContext cxt)
{
	MemoryContext old;
	HeapTuple	tuple;

	for (int i = 0; i < f->natts; i++)
		if (f->cols[i].kind != USAGE_COL_DROPPED && !f->cols[i].unread)
			return NULL;
	for (int i = 0; i < f->natts; i++)
		f->dnulls[i] = true;
	old = MemoryContextSwitchTo(cxt);
	tuple = heap_form_tuple(f->tupdesc, f->dvalues, f->dnulls);
	MemoryContextSwitchTo(old);
	return tuple;
}

/*
 * A call engine for the scans of a table: its options (with credentials),
 * columns and tuple descriptor; what names it in errors.  Its memory lives
 * under parent.
 */
UsageFetch *
usage_fetch_create(UsageOptions *opts, UsageColumn *cols, TupleDesc tupdesc,
				   const char *what, MemoryContext parent)
{
	UsageFetch *f = MemoryContextAllocZero(parent, sizeof(UsageFetch));

	f->opts = opts;
	f->ep = opts->endpoint;
	f->cols = cols;
	f->tupdesc = tupdesc;
	f->natts = tupdesc->natts;
	f->what = what;
	f->bearer = usage_auth_bearer(opts, &f->stats.http);
	f->dvalues = MemoryContextAlloc(parent, sizeof(Datum) * Max(f->natts, 1));
	f->dnulls = MemoryContextAlloc(parent, sizeof(bool) * Max(f->natts, 1));
	f->conv.col = -1;
	f->null_row = make_null_row(f, parent);
	f->call_cxt = AllocSetContextCreate(parent, "usage_fdw calls",
										ALLOCSET_DEFAULT_SIZES);
	f->parse_cxt = AllocSetContextCreate(parent, "usage_fdw parse",
										 ALLOCSET_DEFAULT_SIZES);
	/* small blocks: a batch stops near BATCH_BYTES */
	f->page_cxt = AllocSetContextCreate(parent, "usage_fdw rows",
										ALLOCSET_DEFAULT_MINSIZE,
										ALLOCSET_DEFAULT_INITSIZE,
										BATCH_BYTES / 4);
	f->cleanup.func = call_cxt_cleanup;
	f->cleanup.arg = f;
	MemoryContextRegisterResetCallback(f->call_cxt, &f->cleanup);
	return f;
}

/* The memory of the current (re)scan: value sets given to usage_fetch_add. */
MemoryContext
usage_fetch_memory(UsageFetch *f)
{
	return f->call_cxt;
}

/*
 * The next row, in call, page and item order, waiting for its page if need
 * be; *tag is its call's tag.  NULL at the end of the calls.  The row lives
 * until the next call.
 */
HeapTuple
usage_fetch_next(UsageFetch *f, int *tag)
{
	while (f->next_row >= f->nrows)
	{
		if (!next_rows(f))
			return NULL;
	}
	*tag = f->filling ? f->filling->tag : -1;
	f->stats.rows++;
	/* let the requests in flight make progress while rows are consumed */
	if ((f->stats.rows & 255) == 0 && f->next_start > f->cur_call)
		usage_http_poll();
	return f->rows[f->next_row++];
}

/*
 * Start the calls of the window (up to max_concurrency), without waiting
 * for any.
 */
void
usage_fetch_start(UsageFetch *f)
{
	fill_window(f);
}

/*
 * Can the next row (or the end of the calls) be had without waiting?
 * Starts nothing, and never fails.
 */
bool
usage_fetch_ready(UsageFetch *f)
{
	UsageCall  *call;

	if (f->next_row < f->nrows || f->cur_call >= f->ncalls)
		return true;
	call = &f->calls[f->cur_call];
	return call->xfer == NULL || f->parser_ahead ||
		usage_http_readable(call->xfer,
							f->parser ? 1 : STREAM_START_BYTES);
}

/* Forget the calls and rows of a (re)scan, to start afresh. */
void
usage_fetch_reset(UsageFetch *f)
{
	release_calls(f);
	MemoryContextReset(f->call_cxt);
	MemoryContextReset(f->parse_cxt);
	MemoryContextReset(f->page_cxt);
	/* reset callbacks run once: register again */
	MemoryContextRegisterResetCallback(f->call_cxt, &f->cleanup);
	f->calls = NULL;
	f->ncalls = f->maxcalls = 0;
	f->filling = NULL;
	f->parser = NULL;
	f->parser_ahead = false;
	f->cur_call = 0;
	f->next_start = 0;
	f->rows = NULL;
	f->nrows = f->maxrows = f->next_row = 0;
}

/* Stop the transfers and free the engine's memory. */
void
usage_fetch_end(UsageFetch *f)
{
	release_calls(f);
	f->ncalls = 0;
	MemoryContextDelete(f->call_cxt);
	MemoryContextDelete(f->parse_cxt);
	MemoryContextDelete(f->page_cxt);
	f->call_cxt = f->parse_cxt = f->page_cxt = NULL;
	f->parser = NULL;
}

/* What the requests did so far (and the calls of the current rescan). */
UsageFetchStats *
usage_fetch_stats(UsageFetch *f)
{
	f->stats.ncalls = f->ncalls;
	return &f->stats;
}
