/*-------------------------------------------------------------------------
 *
 * batchexec.c
 *		  The batched key join at execution: batches of outer rows, their
 *		  distinct key tuples offered to the foreign scan (batch.h), the
 *		  rows of each tuple's requests joined locally; EXPLAIN.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/ruleutils.h"

#include "batchjoin.h"

/* execution state */
typedef struct BatchJoinState
{
	CustomScanState css;
	JoinType	jointype;
	int			batch_size;
	int			nkeys;
	int			nscan;			/* attributes of the scan tuple */
	int		   *map;			/* per scan attribute: > 0 outer attno, < 0
								 * minus inner attno */
	ExprState  *joinqual;
	List	   *key_states;
	FmgrInfo   *key_out;		/* per key: output function */
	int16	   *key_typlen;
	bool	   *key_typbyval;
	PlanState  *outer_ps;
	PlanState  *inner_ps;
	TupleTableSlot *outer_slot;
	TupleTableSlot *inner_slot;
	MemoryContext batch_cxt;

	/* the current batch, in batch_cxt */
	int			nouter;
	MinimalTuple *outer_rows;
	int		   *outer_tuple;	/* per outer row: its key tuple, or -1 */
	int			ntuples;
	Datum	   *tuple_values;	/* ntuples * nkeys */
	HTAB	   *tuple_hash;		/* key text -> tuple */
	int		   *ninner;			/* per tuple: rows of its request */
	int		   *maxinner;
	MinimalTuple **inner_rows;
	bool		outer_done;
	int			cur_outer;
	int			cur_inner;
	bool		matched;

	/* EXPLAIN ANALYZE, over all rescans */
	int64		nbatches;
	int64		nkeys_sent;
	int64		ncalls;
} BatchJoinState;

typedef struct BatchKeyEntry
{
	char	   *key;			/* the key tuple as text (hash key) */
	int			tuple;
} BatchKeyEntry;

static Node *batch_create_state(CustomScan *cscan);
static void batch_begin(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *batch_exec(CustomScanState *node);
static void batch_end(CustomScanState *node);
static void batch_rescan(CustomScanState *node);
static void batch_explain(CustomScanState *node, List *ancestors,
						  ExplainState *es);

/* the plan node's methods: RegisterCustomScanMethods (batchjoin.c) */
const CustomScanMethods usage_batch_scan_methods = {
	.CustomName = BATCH_JOIN_NAME,
	.CreateCustomScanState = batch_create_state,
};

static const CustomExecMethods batch_exec_methods = {
	.CustomName = BATCH_JOIN_NAME,
	.BeginCustomScan = batch_begin,
	.ExecCustomScan = batch_exec,
	.EndCustomScan = batch_end,
	.ReScanCustomScan = batch_rescan,
	.ExplainCustomScan = batch_explain,
};

/* ----------------------------------------------------------------
 *		Execution
 * ----------------------------------------------------------------
 */

static Node *
batch_create_state(CustomScan *cscan)
{
	BatchJoinState *bs = palloc0(sizeof(BatchJoinState));

	NodeSetTag(bs, T_CustomScanState);
	bs->css.methods = &batch_exec_methods;
	return (Node *) bs;
}

static void
batch_begin(CustomScanState *node, EState *estate, int eflags)
{
	BatchJoinState *bs = (BatchJoinState *) node;
	CustomScan *cscan = (CustomScan *) node->ss.ps.plan;
	List	   *key_exprs = list_nth(cscan->custom_exprs, BATCH_EXPRS_KEY_EXPRS);
	List	   *map = list_nth(cscan->custom_private, BATCH_PRIVATE_MAP);
	ListCell   *lc;
	int			k = 0;

	bs->jointype = (JoinType) intVal(list_nth(cscan->custom_private,
											  BATCH_PRIVATE_JOINTYPE));
	bs->batch_size = intVal(list_nth(cscan->custom_private,
									 BATCH_PRIVATE_BATCH_SIZE));
	bs->nscan = list_length(map);
	bs->map = palloc(sizeof(int) * Max(bs->nscan, 1));
	foreach(lc, map)
		bs->map[k++] = lfirst_int(lc);

	bs->outer_ps = ExecInitNode((Plan *) linitial(cscan->custom_plans), estate, eflags);
	bs->inner_ps = ExecInitNode((Plan *) lsecond(cscan->custom_plans), estate, eflags);
	node->custom_ps = list_make2(bs->outer_ps, bs->inner_ps);

	bs->nkeys = list_length(key_exprs);
	if (!usage_is_batch_scan(bs->inner_ps, bs->nkeys))
		elog(ERROR, "usage_fdw: the inner side of a batched join is not its foreign scan");

	bs->joinqual = ExecInitQual(list_concat(list_copy(list_nth(cscan->custom_exprs,
																 BATCH_EXPRS_KEY_CLAUSES)),
											list_nth(cscan->custom_exprs,
													 BATCH_EXPRS_EXTRA_QUALS)),
								&node->ss.ps);
	bs->key_states = ExecInitExprList(key_exprs, &node->ss.ps);
	bs->key_out = palloc(sizeof(FmgrInfo) * bs->nkeys);
	bs->key_typlen = palloc(sizeof(int16) * bs->nkeys);
	bs->key_typbyval = palloc(sizeof(bool) * bs->nkeys);
	k = 0;
	foreach(lc, key_exprs)
	{
		Oid			typid = exprType((Node *) lfirst(lc));
		Oid			outfunc;
		bool		isvarlena;

		getTypeOutputInfo(typid, &outfunc, &isvarlena);
		fmgr_info(outfunc, &bs->key_out[k]);
		get_typlenbyval(typid, &bs->key_typlen[k], &bs->key_typbyval[k]);
		k++;
	}

	bs->outer_slot = MakeSingleTupleTableSlot(ExecGetResultType(bs->outer_ps),
											  &TTSOpsMinimalTuple);
	bs->inner_slot = MakeSingleTupleTableSlot(ExecGetResultType(bs->inner_ps),
											  &TTSOpsMinimalTuple);
	bs->batch_cxt = AllocSetContextCreate(estate->es_query_cxt,
										  "usage_fdw batched join",
										  ALLOCSET_DEFAULT_SIZES);
}

/*
 * Put an outer row and an inner row (or NULLs) into the scan tuple, the
 * tuple that the join clauses, the key expressions and the output read.
 */
static TupleTableSlot *
fill_scan_slot(BatchJoinState *bs, MinimalTuple outer, MinimalTuple inner)
{
	TupleTableSlot *scan = bs->css.ss.ss_ScanTupleSlot;

	ExecStoreMinimalTuple(outer, bs->outer_slot, false);
	slot_getallattrs(bs->outer_slot);
	if (inner)
	{
		ExecStoreMinimalTuple(inner, bs->inner_slot, false);
		slot_getallattrs(bs->inner_slot);
	}
	ExecClearTuple(scan);
	for (int i = 0; i < bs->nscan; i++)
	{
		int			m = bs->map[i];

		if (m > 0)
		{
			scan->tts_values[i] = bs->outer_slot->tts_values[m - 1];
			scan->tts_isnull[i] = bs->outer_slot->tts_isnull[m - 1];
		}
		else if (inner)
		{
			scan->tts_values[i] = bs->inner_slot->tts_values[-m - 1];
			scan->tts_isnull[i] = bs->inner_slot->tts_isnull[-m - 1];
		}
		else
		{
			scan->tts_values[i] = (Datum) 0;
			scan->tts_isnull[i] = true;
		}
	}
	return ExecStoreVirtualTuple(scan);
}

static uint32
key_hash(const void *key, Size keysize)
{
	const char *s = *(char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

static int
key_match(const void *a, const void *b, Size keysize)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * The key tuple of the outer row in the scan tuple: its index among the
 * batch's distinct tuples (added when new), or -1 when a key is NULL (no
 * row can match it).  Tuples are distinct by the text of their values,
 * which is what the requests carry.
 */
static int
outer_key_tuple(BatchJoinState *bs)
{
	ExprContext *econtext = bs->css.ss.ps.ps_ExprContext;
	MemoryContext old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
	Datum	   *vals = palloc(sizeof(Datum) * bs->nkeys);
	StringInfoData key;
	ListCell   *lc;
	int			k = 0;
	char	   *keyp;
	BatchKeyEntry *entry;
	bool		found;

	econtext->ecxt_scantuple = bs->css.ss.ss_ScanTupleSlot;
	initStringInfo(&key);
	foreach(lc, bs->key_states)
	{
		bool		isnull;
		char	   *text;

		vals[k] = ExecEvalExpr((ExprState *) lfirst(lc), econtext, &isnull);
		if (isnull)
		{
			MemoryContextSwitchTo(old);
			return -1;
		}
		text = OutputFunctionCall(&bs->key_out[k], vals[k]);
		appendStringInfo(&key, "%zu:%s", strlen(text), text);
		k++;
	}
	MemoryContextSwitchTo(old);

	keyp = key.data;
	entry = (BatchKeyEntry *) hash_search(bs->tuple_hash, &keyp, HASH_FIND, NULL);
	if (entry)
		return entry->tuple;

	old = MemoryContextSwitchTo(bs->batch_cxt);
	keyp = pstrdup(key.data);
	entry = (BatchKeyEntry *) hash_search(bs->tuple_hash, &keyp, HASH_ENTER, &found);
	entry->tuple = bs->ntuples;
	for (k = 0; k < bs->nkeys; k++)
		bs->tuple_values[bs->ntuples * bs->nkeys + k] =
			datumCopy(vals[k], bs->key_typbyval[k], bs->key_typlen[k]);
	MemoryContextSwitchTo(old);
	return bs->ntuples++;
}

/*
 * Read outer rows into the batch, up to batch_size rows and at most
 * work_mem of them (at least one), each with its key tuple.
 */
static void
read_outer_rows(BatchJoinState *bs)
{
	ExprContext *econtext = bs->css.ss.ps.ps_ExprContext;
	Size		bytes = 0;

	while (bs->nouter < bs->batch_size &&
		   (bs->nouter == 0 || bytes < (Size) work_mem * 1024))
	{
		TupleTableSlot *slot;
		MemoryContext old;
		int			i = bs->nouter;

		CHECK_FOR_INTERRUPTS();
		slot = ExecProcNode(bs->outer_ps);
		if (TupIsNull(slot))
		{
			bs->outer_done = true;
			break;
		}
		old = MemoryContextSwitchTo(bs->batch_cxt);
		bs->outer_rows[i] = ExecCopySlotMinimalTuple(slot);
		MemoryContextSwitchTo(old);
		bytes += GetMemoryChunkSpace(bs->outer_rows[i]);
		bs->nouter++;

		ResetExprContext(econtext);
		fill_scan_slot(bs, bs->outer_rows[i], NULL);
		bs->outer_tuple[i] = outer_key_tuple(bs);
	}
}

/*
 * Rescan the foreign table for key tuples first .. first + n - 1 of the
 * batch, and keep each row with its tuple.
 */
static void
fetch_inner_rows(BatchJoinState *bs, int first, int n)
{
	usage_batch_set_keys(bs->inner_ps, n, &bs->tuple_values[first * bs->nkeys]);
	ExecReScan(bs->inner_ps);
	for (;;)
	{
		TupleTableSlot *slot = ExecProcNode(bs->inner_ps);
		MemoryContext old;
		int			t;

		if (TupIsNull(slot))
			break;
		t = usage_batch_row_tuple(bs->inner_ps);
		if (t < 0 || t >= n)
			elog(ERROR, "usage_fdw: a row of the batched join's scan belongs to no key");
		t += first;
		old = MemoryContextSwitchTo(bs->batch_cxt);
		if (bs->ninner[t] == bs->maxinner[t])
		{
			bs->maxinner[t] = Max(8, bs->maxinner[t] * 2);
			bs->inner_rows[t] = bs->inner_rows[t] ?
				repalloc(bs->inner_rows[t], sizeof(MinimalTuple) * bs->maxinner[t]) :
				palloc(sizeof(MinimalTuple) * bs->maxinner[t]);
		}
		bs->inner_rows[t][bs->ninner[t]++] = ExecCopySlotMinimalTuple(slot);
		MemoryContextSwitchTo(old);
	}
	bs->ncalls += usage_batch_calls(bs->inner_ps);
}

/*
 * Read the next batch: up to batch_size outer rows (and at most work_mem
 * of them) and their key tuples, then every row of the requests of those
 * tuples, grouped by tuple: one rescan of the foreign table for as many
 * tuples as it can take under the per-scan request limit, and again for
 * the rest.
 */
static void
load_batch(BatchJoinState *bs)
{
	MemoryContext old;
	HASHCTL		ctl;

	MemoryContextReset(bs->batch_cxt);
	old = MemoryContextSwitchTo(bs->batch_cxt);
	bs->outer_rows = palloc(sizeof(MinimalTuple) * bs->batch_size);
	bs->outer_tuple = palloc(sizeof(int) * bs->batch_size);
	bs->tuple_values = palloc(sizeof(Datum) * bs->batch_size * bs->nkeys);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(BatchKeyEntry);
	ctl.hash = key_hash;
	ctl.match = key_match;
	ctl.hcxt = bs->batch_cxt;
	bs->tuple_hash = hash_create("usage_fdw batch keys", Min(bs->batch_size, 1024),
								 &ctl, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	MemoryContextSwitchTo(old);
	bs->nouter = 0;
	bs->ntuples = 0;

	read_outer_rows(bs);
	if (bs->nouter == 0)
		return;
	bs->nbatches++;

	old = MemoryContextSwitchTo(bs->batch_cxt);
	bs->ninner = palloc0(sizeof(int) * Max(bs->ntuples, 1));
	bs->maxinner = palloc0(sizeof(int) * Max(bs->ntuples, 1));
	bs->inner_rows = palloc0(sizeof(MinimalTuple *) * Max(bs->ntuples, 1));
	MemoryContextSwitchTo(old);

	/*
	 * One fan-out for the batch's keys; in several rescans when the scan's
	 * own fan-out would take them over the per-scan request limit.
	 */
	bs->nkeys_sent += bs->ntuples;
	for (int first = 0, n; first < bs->ntuples; first += n)
	{
		Datum	   *values = &bs->tuple_values[first * bs->nkeys];

		n = usage_batch_offer(bs->inner_ps, bs->ntuples - first, values);
		fetch_inner_rows(bs, first, n);
	}
}

/*
 * The next joined row, in the scan tuple, or an empty slot at the end: for
 * each outer row of the batch, the rows of its key tuple's request that
 * pass the join clauses, with the join type's rules (LEFT: an unmatched
 * row once with NULLs; SEMI: a row at most once; ANTI: only unmatched
 * rows).  ExecScan applies the clauses that filter after an outer join and
 * the projection.
 */
static TupleTableSlot *
batch_next(ScanState *ss)
{
	BatchJoinState *bs = (BatchJoinState *) ss;
	ExprContext *econtext = ss->ps.ps_ExprContext;

	for (;;)
	{
		int			tuple;
		MinimalTuple outer;

		CHECK_FOR_INTERRUPTS();
		if (bs->cur_outer >= bs->nouter)
		{
			if (bs->outer_done)
				return ExecClearTuple(ss->ss_ScanTupleSlot);
			load_batch(bs);
			bs->cur_outer = 0;
			bs->cur_inner = 0;
			bs->matched = false;
			continue;
		}
		outer = bs->outer_rows[bs->cur_outer];
		tuple = bs->outer_tuple[bs->cur_outer];
		while (tuple >= 0 && bs->cur_inner < bs->ninner[tuple])
		{
			TupleTableSlot *slot;

			ResetExprContext(econtext);
			slot = fill_scan_slot(bs, outer, bs->inner_rows[tuple][bs->cur_inner++]);
			econtext->ecxt_scantuple = slot;
			if (!ExecQual(bs->joinqual, econtext))
				continue;
			bs->matched = true;
			if (bs->jointype == JOIN_ANTI)
				break;
			if (bs->jointype == JOIN_SEMI)
				bs->cur_inner = bs->ninner[tuple];	/* no more for this row */
			return slot;
		}
		/* this outer row is done */
		bs->cur_outer++;
		bs->cur_inner = 0;
		if (!bs->matched && (bs->jointype == JOIN_LEFT || bs->jointype == JOIN_ANTI))
			return fill_scan_slot(bs, outer, NULL);
		bs->matched = false;
	}
}

static bool
batch_recheck(ScanState *ss, TupleTableSlot *slot)
{
	return true;
}

static TupleTableSlot *
batch_exec(CustomScanState *node)
{
	return ExecScan(&node->ss, batch_next, batch_recheck);
}

/* Rescan: from the first outer row again (parameters may have changed). */
static void
batch_rescan(CustomScanState *node)
{
	BatchJoinState *bs = (BatchJoinState *) node;

	if (node->ss.ps.chgParam != NULL)
	{
		UpdateChangedParamSet(bs->outer_ps, node->ss.ps.chgParam);
		UpdateChangedParamSet(bs->inner_ps, node->ss.ps.chgParam);
	}
	ExecReScan(bs->outer_ps);
	MemoryContextReset(bs->batch_cxt);
	bs->nouter = 0;
	bs->ntuples = 0;
	bs->cur_outer = 0;
	bs->cur_inner = 0;
	bs->matched = false;
	bs->outer_done = false;
}

static void
batch_end(CustomScanState *node)
{
	BatchJoinState *bs = (BatchJoinState *) node;

	ExecEndNode(bs->outer_ps);
	ExecEndNode(bs->inner_ps);
	ExecDropSingleTupleTableSlot(bs->outer_slot);
	ExecDropSingleTupleTableSlot(bs->inner_slot);
	MemoryContextDelete(bs->batch_cxt);
}

/* Does expr (set up for execution) read a column of the inner side? */
static bool
reads_inner(BatchJoinState *bs, Node *expr)
{
	List	   *vars = pull_var_clause(expr, PVC_RECURSE_PLACEHOLDERS);
	ListCell   *lc;

	foreach(lc, vars)
	{
		Var		   *var = (Var *) lfirst(lc);

		if (var->varno == INDEX_VAR && var->varattno >= 1 &&
			var->varattno <= bs->nscan && bs->map[var->varattno - 1] < 0)
			return true;
	}
	return false;
}

/*
 * The key clauses in one form on every PostgreSQL version, whichever way
 * round the planner stored them: "(foreign_column = outer_expression)",
 * several ANDed.
 */
static char *
deparse_batch_keys(BatchJoinState *bs, List *clauses, List *context,
				   bool useprefix)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	if (list_length(clauses) > 1)
		appendStringInfoChar(&buf, '(');
	foreach(lc, clauses)
	{
		Node	   *clause = (Node *) lfirst(lc);
		Node	   *col = NULL;
		Node	   *val = NULL;

		if (lc != list_head(clauses))
			appendStringInfoString(&buf, " AND ");
		if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
		{
			Node	   *a = linitial(((OpExpr *) clause)->args);
			Node	   *b = lsecond(((OpExpr *) clause)->args);

			if (reads_inner(bs, a) && !reads_inner(bs, b))
				col = a, val = b;
			else if (reads_inner(bs, b) && !reads_inner(bs, a))
				col = b, val = a;
		}
		if (col)
			appendStringInfo(&buf, "(%s = %s)",
							 deparse_expression(col, context, useprefix, false),
							 deparse_expression(val, context, useprefix, false));
		else
			appendStringInfoString(&buf, deparse_expression(clause, context, useprefix, false));
	}
	if (list_length(clauses) > 1)
		appendStringInfoChar(&buf, ')');
	return buf.data;
}

/* EXPLAIN: the join type, the keys, other join clauses, the batch size. */
static void
batch_explain(CustomScanState *node, List *ancestors, ExplainState *es)
{
	BatchJoinState *bs = (BatchJoinState *) node;
	CustomScan *cscan = (CustomScan *) node->ss.ps.plan;
	List	   *context;
	bool		useprefix = list_length(es->rtable) > 1 || es->verbose;
	List	   *extra = list_nth(cscan->custom_exprs, BATCH_EXPRS_EXTRA_QUALS);
	const char *jt;

	switch (bs->jointype)
	{
		case JOIN_LEFT:
			jt = "Left";
			break;
		case JOIN_SEMI:
			jt = "Semi";
			break;
		case JOIN_ANTI:
			jt = "Anti";
			break;
		default:
			jt = "Inner";
			break;
	}
	ExplainPropertyText("Join Type", jt, es);

	context = set_deparse_context_plan(es->deparse_cxt, &cscan->scan.plan, ancestors);
	ExplainPropertyText("Batch Keys",
						deparse_batch_keys(bs, list_nth(cscan->custom_exprs,
														BATCH_EXPRS_KEY_CLAUSES),
										   context, useprefix),
						es);
	if (extra != NIL)
		ExplainPropertyText("Join Filter",
							deparse_expression((Node *) make_ands_explicit(extra),
											   context, useprefix, false),
							es);
	ExplainPropertyInteger("Batch Size", NULL, bs->batch_size, es);

	if (es->analyze)
	{
		if (es->format == EXPLAIN_FORMAT_TEXT)
			ExplainPropertyText("Batches",
								psprintf(INT64_FORMAT " (distinct keys=" INT64_FORMAT
										 " requests=" INT64_FORMAT ")",
										 bs->nbatches, bs->nkeys_sent, bs->ncalls),
								es);
		else
		{
			ExplainPropertyInteger("Batches", NULL, bs->nbatches, es);
			ExplainPropertyInteger("Distinct Keys", NULL, bs->nkeys_sent, es);
			ExplainPropertyInteger("Requests", NULL, bs->ncalls, es);
		}
	}
}
