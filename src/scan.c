/*-------------------------------------------------------------------------
 *
 * scan.c
 *		  The executor side of a foreign scan: Begin, Iterate, ReScan, End,
 *		  Explain, the asynchronous callbacks under an Append, and the scan
 *		  side of the batched join (batch.h).
 *
 * A scan evaluates its parameters when it starts (pushdown.c), gives the
 * value sets to its call engine (fetch.c) and returns the engine's rows.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "executor/execAsync.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "batch.h"
#include "fetch.h"

/* the state of one foreign scan, in ForeignScanState.fdw_state */
typedef struct UsageScanState
{
	Relation	rel;
	UsageOptions *opts;
	const UsageEndpoint *ep;
	UsageColumn *cols;
	int		   *param_col;		/* per parameter: its column, or -1 */
	List	   *conds;
	List	   *expr_states;
	UsageBatchKeys *batch;		/* keys from a batched join, or NULL */
	MemoryContext scan_cxt;		/* the engine's, until the scan ends */
	MemoryContextCallback cleanup;
	UsageFetch *fetch;			/* NULL under EXPLAIN only */
	bool		started;		/* this (re)scan's calls are laid out */
	int			row_tag;		/* the tag of the row returned last */
	int			ready_pipe[2];	/* asynchronous execution: a pipe whose
								 * read end is always readable */
} UsageScanState;

static void begin_batch_requests(UsageScanState *st, ExprContext *econtext);

/* close the asynchronous execution pipe, if any */
static void
close_ready_pipe(UsageScanState *st)
{
	if (st->ready_pipe[0] < 0)
		return;
	close(st->ready_pipe[0]);
	close(st->ready_pipe[1]);
	ReleaseExternalFD();
	ReleaseExternalFD();
	st->ready_pipe[0] = st->ready_pipe[1] = -1;
}

/* The scan context is deleted (end of scan, or error): close the pipe. */
static void
scan_cxt_cleanup(void *arg)
{
	close_ready_pipe((UsageScanState *) arg);
}

/*
 * Refuse a statement that tests, above this scan, an echo column that no
 * request of the scan carries (see echo_check.c).  Also for EXPLAIN: the
 * plan is refused as the planner refuses a test at the scan.
 */
static void
check_echo_tests(ForeignScanState *node)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	UsageScanState *st = (UsageScanState *) node->fdw_state;
	Bitmapset  *unsent = NULL;
	ListCell   *lc;

	foreach(lc, (List *) list_nth(fsplan->fdw_private, USAGE_PRIVATE_UNSENT_ECHO))
		unsent = bms_add_member(unsent, intVal(lfirst(lc)));
	usage_check_echo_tests(node->ss.ps.state->es_plannedstmt,
						   fsplan->scan.scanrelid, unsent,
						   RelationGetRelid(st->rel), st->opts->table_name);
}

/*
 * BeginForeignScan: read the plan's fdw_private, map the columns and, unless
 * only EXPLAIN is run, get the user's credentials and create the scan's
 * call engine.  No request is sent before the first tuple is asked for.
 */
static void
usageBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	UsageScanState *st = palloc0(sizeof(UsageScanState));
	Relation	rel = node->ss.ss_currentRelation;
	Oid			userid;
	char	   *what;
	ListCell   *lc;

	node->fdw_state = st;
	st->ready_pipe[0] = st->ready_pipe[1] = -1;
	st->rel = rel;
	st->opts = usage_get_options(RelationGetRelid(rel));
	st->ep = st->opts->endpoint;
	st->conds = usage_conds_from_list(list_nth(fsplan->fdw_private,
											   USAGE_PRIVATE_CONDS));
	st->cols = usage_map_columns(rel, st->ep, (eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0,
								 &st->param_col);
	st->batch = usage_batch_keys_from_list(list_nth(fsplan->fdw_private,
													USAGE_PRIVATE_BATCH_KEYS));
	foreach(lc, (List *) list_nth(fsplan->fdw_private, USAGE_PRIVATE_UNREAD))
		st->cols[intVal(lfirst(lc)) - 1].unread = true;
	check_echo_tests(node);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	userid = usage_compat_scan_user(fsplan, estate);
	usage_get_user_options(st->opts, GetForeignTable(RelationGetRelid(rel))->serverid,
						   userid);
	st->expr_states = ExecInitExprList(fsplan->fdw_exprs, (PlanState *) node);
	st->scan_cxt = AllocSetContextCreate(estate->es_query_cxt, "usage_fdw scan",
										 ALLOCSET_DEFAULT_SIZES);
	st->cleanup.func = scan_cxt_cleanup;
	st->cleanup.arg = st;
	MemoryContextRegisterResetCallback(st->scan_cxt, &st->cleanup);
	what = MemoryContextStrdup(st->scan_cxt,
							   psprintf("foreign table %s (endpoint %s)",
										st->opts->table_name, st->ep->name));
	st->fetch = usage_fetch_create(st->opts, st->cols, RelationGetDescr(rel),
								   what, st->scan_cxt);
}

/*
 * Evaluate the parameters and lay out the calls of this (re)scan: one per
 * combination of values that can hold; under a batched join, that for
 * each key tuple of the batch in turn.
 */
static void
begin_requests(ForeignScanState *node, UsageScanState *st)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	MemoryContext old = MemoryContextSwitchTo(usage_fetch_memory(st->fetch));
	bool		empty;

	if (st->batch == NULL)
	{
		UsageValueSet *sets = usage_evaluate_params(st->ep, st->opts, st->cols,
													st->param_col, st->conds,
													st->expr_states, econtext,
													&empty);

		usage_fetch_add(st->fetch, sets, empty, -1);
	}
	else
		begin_batch_requests(st, econtext);
	st->started = true;
	MemoryContextSwitchTo(old);
}

/*
 * IterateForeignScan: the next row, in call, page and item order; the
 * first call evaluates the parameters and lays out the calls.
 */
static TupleTableSlot *
usageIterateForeignScan(ForeignScanState *node)
{
	UsageScanState *st = (UsageScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	HeapTuple	tuple;

	if (!st->started)
		begin_requests(node, st);
	tuple = usage_fetch_next(st->fetch, &st->row_tag);
	if (tuple == NULL)
		return ExecClearTuple(slot);
	ExecStoreHeapTuple(tuple, slot, false);
	return slot;
}

/* ReScanForeignScan: drop what is in flight; the next row starts over. */
static void
usageReScanForeignScan(ForeignScanState *node)
{
	UsageScanState *st = (UsageScanState *) node->fdw_state;

	/* parameters may have changed: evaluate and request again */
	usage_fetch_reset(st->fetch);
	st->started = false;
}

/* EndForeignScan: stop the transfers and free the scan's memory. */
static void
usageEndForeignScan(ForeignScanState *node)
{
	UsageScanState *st = (UsageScanState *) node->fdw_state;

	if (st == NULL || st->fetch == NULL)
		return;
	usage_fetch_end(st->fetch);
	st->fetch = NULL;
	MemoryContextDelete(st->scan_cxt);
	st->scan_cxt = NULL;
}

/*
 * EXPLAIN: the request template of the scan (see explain.c) and its
 * fan-out.
 */
static void
explain_request(UsageScanState *st, ForeignScan *fsplan, ExplainState *es)
{
	char	   *body = NULL;
	char	   *legend = NULL;
	int			fanout;
	char	   *request;
	List	   *conds = st->conds;
	List	   *exprs = fsplan->fdw_exprs;

	if (st->batch)
	{
		/* each key of the batch, shown as a value known at execution */
		conds = list_concat(list_copy(conds),
							usage_batch_key_conds(st->batch, list_length(exprs),
												  USAGE_OP_ANY));
		exprs = list_copy(exprs);
		for (int k = 0; k < st->batch->nkeys; k++)
		{
			Param	   *p = makeNode(Param);

			p->paramkind = PARAM_EXEC;
			p->paramid = -1;	/* explain.c: a key of the batch */
			p->paramtype = st->batch->valtypes[k];
			p->paramtypmod = -1;
			p->location = -1;
			exprs = lappend(exprs, p);
		}
	}
	request = usage_describe_request(st->opts->endpoint, st->opts, st->cols,
									 st->param_col, conds, exprs,
									 &fanout, &body, &legend);
	ExplainPropertyText("Request", request, es);
	if (body)
		ExplainPropertyText("Request Body", body, es);
	if (legend)
		ExplainPropertyText("Request Parameters", legend, es);
	if (fanout >= 0)
		ExplainPropertyInteger("Fan-out", fanout == 1 ? "request" : "requests", fanout, es);
	else
		ExplainPropertyText("Fan-out", "known at execution", es);
}

/* EXPLAIN ANALYZE: what the scan's HTTP traffic was. */
static void
explain_http_stats(UsageScanState *st, ExplainState *es)
{
	UsageFetchStats *fs = usage_fetch_stats(st->fetch);

	if (es->format == EXPLAIN_FORMAT_TEXT)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfo(&buf, "requests=" INT64_FORMAT " retries=" INT64_FORMAT
						 " pages=" INT64_FORMAT " rows=" INT64_FORMAT
						 " bytes=" INT64_FORMAT,
						 fs->http.requests, fs->http.retries, fs->pages,
						 fs->rows, fs->http.bytes);
		if (fs->has_total)
			appendStringInfo(&buf, " total_count=" INT64_FORMAT, fs->total_count);
		if (es->timing)
			appendStringInfo(&buf, " wait=%.3f ms", fs->http.wait_ms);
		ExplainPropertyText("HTTP", buf.data, es);
		return;
	}
	ExplainPropertyInteger("HTTP Requests", NULL, fs->http.requests, es);
	ExplainPropertyInteger("HTTP Retries", NULL, fs->http.retries, es);
	ExplainPropertyInteger("HTTP Pages", NULL, fs->pages, es);
	ExplainPropertyInteger("HTTP Rows", NULL, fs->rows, es);
	ExplainPropertyInteger("HTTP Response Bytes", NULL, fs->http.bytes, es);
	if (fs->has_total)
		ExplainPropertyInteger("HTTP Total Count", NULL, fs->total_count, es);
	if (es->timing)
		ExplainPropertyFloat("HTTP Wait Time", "ms", fs->http.wait_ms, 3, es);
}

/*
 * ExplainForeignScan: the request template (method, path and query, body,
 * the placeholders' legend, the fan-out) and, under ANALYZE, the HTTP
 * traffic of the scan.
 */
static void
usageExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	UsageScanState *st = (UsageScanState *) node->fdw_state;

	explain_request(st, (ForeignScan *) node->ss.ps.plan, es);
	if (es->analyze && st->fetch)
		explain_http_stats(st, es);
}

/* ----------------------------------------------------------------
 *		Asynchronous execution 
 *
 * Under an Append (foreign partitions, a UNION ALL of foreign tables) the
 * scans run asynchronously, so that their requests are in flight at the
 * same time.  The first request for a tuple of each scan only sends its
 * requests and leaves the answer pending, so the Append starts every
 * scan's requests before it waits for any.  The backend's one libcurl
 * multi handle moves every transfer forward whenever any scan waits, and
 * a retry sleeping in backoff has no socket at all; so a scan does not
 * hand the Append a socket to wait on: it registers an always-readable
 * pipe, so that the Append notifies it at once, and waits (interruptibly,
 * driving all transfers) for its page when notified, after the Append has
 * released its wait event set (an error raised while that set exists would
 * leak its descriptor before PostgreSQL 17).  While the Append still has
 * synchronous children to run, a scan whose page has not arrived registers
 * nothing and lets them run.
 * ----------------------------------------------------------------
 */
/*
 * Deliver the next tuple, or the end of the scan (an empty slot), through
 * the ForeignScan node itself, which applies the local quals and the
 * projection as it does for a synchronous scan.
 */
static void
produce_tuple(AsyncRequest *areq)
{
	PlanState  *requestee = areq->requestee;

	ExecAsyncRequestDone(areq, requestee->ExecProcNodeReal(requestee));
}

/* The read end of the scan's always-readable pipe, created on first use. */
static int
ready_fd(UsageScanState *st)
{
	if (st->ready_pipe[0] >= 0)
		return st->ready_pipe[0];
	if (!AcquireExternalFD())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not open a pipe for asynchronous execution: too many open files")));
	if (!AcquireExternalFD())
	{
		ReleaseExternalFD();
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not open a pipe for asynchronous execution: too many open files")));
	}
	if (pipe(st->ready_pipe) != 0 || write(st->ready_pipe[1], "", 1) != 1)
	{
		int			save_errno = errno;

		if (st->ready_pipe[0] >= 0)
			close_ready_pipe(st);
		else
		{
			ReleaseExternalFD();
			ReleaseExternalFD();
		}
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open a pipe for asynchronous execution: %m")));
	}
	return st->ready_pipe[0];
}

/*
 * ForeignAsyncRequest: the first time, send the scan's requests and leave
 * the answer pending; afterwards, produce the next tuple.
 */
static void
usageForeignAsyncRequest(AsyncRequest *areq)
{
	ForeignScanState *node = (ForeignScanState *) areq->requestee;
	UsageScanState *st = (UsageScanState *) node->fdw_state;

	if (!st->started)
	{
		(void) ready_fd(st);
		begin_requests(node, st);
		usage_fetch_start(st->fetch);
		ExecAsyncRequestPending(areq);
		return;
	}
	produce_tuple(areq);
}

/*
 * ForeignAsyncConfigureWait: have the Append notify the scan at once,
 * unless its page has not arrived and the Append has synchronous work left.
 * Never waits and never fails while the Append's wait event set exists
 * (the pipe is opened when the scan starts its requests).
 */
static void
usageForeignAsyncConfigureWait(AsyncRequest *areq)
{
	ForeignScanState *node = (ForeignScanState *) areq->requestee;
	UsageScanState *st = (UsageScanState *) node->fdw_state;
	AppendState *requestor = (AppendState *) areq->requestor;

	Assert(IsA(requestor, AppendState));
	if (!requestor->as_syncdone && !usage_fetch_ready(st->fetch))
		return;
	AddWaitEventToSet(requestor->as_eventset, WL_SOCKET_READABLE,
					  st->ready_pipe[0], NULL, areq);
}

/*
 * ForeignAsyncNotify: produce the next tuple, waiting for its page if need
 * be (the Append's wait event set is gone by now).
 */
static void
usageForeignAsyncNotify(AsyncRequest *areq)
{
	produce_tuple(areq);
}

/* ----------------------------------------------------------------
 *		The scan side of a batched key join (batchjoin.c)
 *
 * The batched join plans the foreign table's scan as a plain scan whose
 * ForeignPath (and then the plan's fdw_private, slot
 * USAGE_PRIVATE_BATCH_KEYS) lists the parameters its keys supply, as
 * integer lists of UsageBatchKeyField fields.  Before each rescan the join hands over the distinct key tuples
 * of a batch; the scan makes the requests of each tuple in turn, and tells
 * for each row which tuple's request it came from.
 * ----------------------------------------------------------------
 */

/*
 * The scan's own conditions plus "param = key" for each key of a batched
 * join, the keys' values being the expressions after the scan's own.
 */
static List *
batch_conds(UsageScanState *st)
{
	return list_concat(list_copy(st->conds),
					   usage_batch_key_conds(st->batch, list_length(st->expr_states),
									   USAGE_OP_EQ));
}

/*
 * The value sets of key tuple t of values (conds from batch_conds),
 * evaluated like any scan's (bindings, dedup, contradictions).
 */
static UsageValueSet *
batch_tuple_sets(UsageScanState *st, ExprContext *econtext, List *conds,
				 Datum *values, int t, bool *empty)
{
	UsageBatchKeys *b = st->batch;
	List	   *states = list_copy(st->expr_states);

	for (int k = 0; k < b->nkeys; k++)
	{
		Const	   *c = makeConst(b->valtypes[k], -1, InvalidOid,
								  b->typlens[k], values[t * b->nkeys + k],
								  false, b->typbyvals[k]);

		states = lappend(states, ExecInitExpr((Expr *) c, NULL));
	}
	return usage_evaluate_params(st->ep, st->opts, st->cols, st->param_col,
								 conds, states, econtext, empty);
}

/*
 * The requests of a rescan under a batched join: for each key tuple of the
 * batch, the calls of its value sets.  No tuple, no request.
 */
static void
begin_batch_requests(UsageScanState *st, ExprContext *econtext)
{
	List	   *conds = batch_conds(st);

	for (int t = 0; t < st->batch->ntuples; t++)
	{
		bool		empty;
		UsageValueSet *sets = batch_tuple_sets(st, econtext, conds,
											   st->batch->values, t, &empty);

		usage_fetch_add(st->fetch, sets, empty, t);
	}
}

/*
 * The batched join offers the scan ntuples key tuples: how many of them,
 * from the first, can one rescan take without more than the per-scan
 * limit of requests?  Known only now: the scan's own IN lists may come
 * from a subquery or a parameter.  At least one, so that a single tuple
 * over the limit fails as the plain plan would.
 */
int
usage_batch_offer(PlanState *ps, int ntuples, Datum *values)
{
	ForeignScanState *node = (ForeignScanState *) ps;
	UsageScanState *st = (UsageScanState *) node->fdw_state;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "usage_fdw batch offer",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	List	   *conds = batch_conds(st);
	double		total = 0;
	int			n;

	for (n = 0; n < ntuples; n++)
	{
		bool		empty;
		UsageValueSet *sets = batch_tuple_sets(st, ps->ps_ExprContext, conds,
											   values, n, &empty);
		double		calls = usage_fetch_count_calls(st->ep, sets, empty);

		if (n > 0 && total + calls > USAGE_MAX_REQUESTS_PER_SCAN)
			break;
		total += calls;
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return Max(n, 1);
}

/* Is the plan state a scan of ours that takes nkeys keys from a batch? */
bool
usage_is_batch_scan(PlanState *ps, int nkeys)
{
	ForeignScanState *node = (ForeignScanState *) ps;
	UsageScanState *st;

	if (ps == NULL || !IsA(ps, ForeignScanState) || node->fdwroutine == NULL ||
		node->fdwroutine->BeginForeignScan != usageBeginForeignScan)
		return false;
	st = (UsageScanState *) node->fdw_state;
	return st != NULL && st->batch != NULL && st->batch->nkeys == nkeys;
}

/*
 * The key tuples of the next (re)scan: ntuples * nkeys values, distinct
 * and none NULL, owned by the caller until the scan has read them.
 */
void
usage_batch_set_keys(PlanState *ps, int ntuples, Datum *values)
{
	UsageScanState *st = (UsageScanState *) ((ForeignScanState *) ps)->fdw_state;

	st->batch->ntuples = ntuples;
	st->batch->values = values;
}

/* The key tuple whose request the row returned last came from. */
int
usage_batch_row_tuple(PlanState *ps)
{
	UsageScanState *st = (UsageScanState *) ((ForeignScanState *) ps)->fdw_state;

	return st->row_tag;
}

/* The requests (calls, not counting pages and retries) of this rescan. */
int
usage_batch_calls(PlanState *ps)
{
	UsageScanState *st = (UsageScanState *) ((ForeignScanState *) ps)->fdw_state;

	return st->started ? usage_fetch_stats(st->fetch)->ncalls : 0;
}

/*
 * The executor's callbacks, for the handler (module.c).
 */
void
usage_scan_routine(FdwRoutine *routine)
{
	routine->BeginForeignScan = usageBeginForeignScan;
	routine->IterateForeignScan = usageIterateForeignScan;
	routine->ReScanForeignScan = usageReScanForeignScan;
	routine->EndForeignScan = usageEndForeignScan;
	routine->ExplainForeignScan = usageExplainForeignScan;
	routine->ForeignAsyncRequest = usageForeignAsyncRequest;
	routine->ForeignAsyncConfigureWait = usageForeignAsyncConfigureWait;
	routine->ForeignAsyncNotify = usageForeignAsyncNotify;
}
