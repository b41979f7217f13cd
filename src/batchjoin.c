/*-------------------------------------------------------------------------
 *
 * batchjoin.c
 *		  The batched key join: a join whose clauses supply request
 *		  parameters of a usage_fdw foreign table from the other side
 *		  ("local_flows l JOIN usage u ON u.flow_id = l.id"), run as one
 *		  concurrent fan-out per batch of outer rows instead of one request
 *		  per outer row, one after another.
 *
 * Planning: set_join_pathlist_hook offers, for an inner, left, semi or
 * anti join whose inner side is one of our foreign tables, a CustomPath
 * "UsageBatchedJoin" whose children are the outer relation's cheapest path
 * and a plain scan of the foreign table marked with the parameters that the
 * join's equality clauses supply (the keys).  The plan is a CustomScan with
 * scanrelid 0 whose scan tuple holds the outer and inner columns that the
 * output and the join clauses need (custom_scan_tlist, as postgres_fdw's
 * foreign joins use fdw_scan_tlist).
 *
 * Execution: up to batch_size outer rows (at most work_mem of them) are
 * read into a batch; the key expressions are evaluated for each, and the
 * distinct non-NULL key tuples (compared by their text, which is what the
 * request carries) are offered to the foreign scan, which tells how many
 * it can take under its per-scan request limit (its own IN lists are known
 * only now) and is rescanned for those, then for the rest: it makes the
 * requests of every tuple (max_concurrency at a time, with paging and
 * retries as usual) and tells for each row which tuple's request returned
 * it.  Each outer row is
 * then joined with the rows of its own tuple's request, applying every join
 * clause, the key equalities included: exactly what a nested loop over a
 * parameterized scan would return, in the same order.  Memory is bounded
 * by the outer rows and inner rows of one batch.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "optimizer/tlist.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/ruleutils.h"
#include "utils/selfuncs.h"

#include "batch.h"

#define BATCH_JOIN_NAME "UsageBatchedJoin"

/* usage_fdw.enable_batched_join */
static bool enable_batched_join = true;

static set_join_pathlist_hook_type prev_join_pathlist_hook = NULL;

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

/*
 * The path of a batched join: a CustomPath (custom_paths: the outer path,
 * the foreign scan's) and what its plan is built from.
 */
typedef struct BatchJoinPath
{
	CustomPath	cpath;
	JoinType	jointype;
	int			batch_size;		/* outer rows per batch, at most */
	List	   *restrictlist;	/* RestrictInfos of the join */
	List	   *key_exprs;		/* per key: the outer value */
	List	   *key_clauses;	/* per key: its join clause */
} BatchJoinPath;

/* The slots of the plan's custom_private (copyable nodes). */
typedef enum BatchPrivateIndex
{
	BATCH_PRIVATE_JOINTYPE,		/* Integer: the JoinType */
	BATCH_PRIVATE_BATCH_SIZE,	/* Integer: outer rows per batch, at most */
	BATCH_PRIVATE_MAP,			/* IntList: per scan tuple attribute, > 0
								 * outer attno, < 0 minus inner attno */
	BATCH_PRIVATE_NSLOTS
} BatchPrivateIndex;

/* The slots of the plan's custom_exprs (expressions setrefs.c fixes). */
typedef enum BatchExprsIndex
{
	BATCH_EXPRS_KEY_CLAUSES,	/* per key: its join clause */
	BATCH_EXPRS_EXTRA_QUALS,	/* the other join clauses */
	BATCH_EXPRS_KEY_EXPRS,		/* per key: the outer value */
	BATCH_EXPRS_NSLOTS
} BatchExprsIndex;

static void batch_join_pathlist(PlannerInfo *root, RelOptInfo *joinrel,
								RelOptInfo *outerrel, RelOptInfo *innerrel,
								JoinType jointype, JoinPathExtraData *extra);
static Plan *batch_plan_path(PlannerInfo *root, RelOptInfo *rel,
							 CustomPath *best_path, List *tlist,
							 List *clauses, List *custom_plans);
static Node *batch_create_state(CustomScan *cscan);
static void batch_begin(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *batch_exec(CustomScanState *node);
static void batch_end(CustomScanState *node);
static void batch_rescan(CustomScanState *node);
static void batch_explain(CustomScanState *node, List *ancestors,
						  ExplainState *es);

static const CustomPathMethods batch_path_methods = {
	.CustomName = BATCH_JOIN_NAME,
	.PlanCustomPath = batch_plan_path,
};

static const CustomScanMethods batch_scan_methods = {
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

/*
 * Called from _PG_init: the GUC, the plan node's methods (for plan
 * serialization) and the join path hook.
 */
void
usage_batch_init(void)
{
	DefineCustomBoolVariable("usage_fdw.enable_batched_join",
							 "Runs joins that supply parameters of usage_fdw foreign tables in batches.",
							 "When on, the planner may read the outer side of such a join in batches "
							 "and fetch the distinct keys of each batch as one concurrent fan-out; "
							 "when off, such joins run as nested loops, one request per outer row.",
							 &enable_batched_join,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	RegisterCustomScanMethods(&batch_scan_methods);
	prev_join_pathlist_hook = set_join_pathlist_hook;
	set_join_pathlist_hook = batch_join_pathlist;
}

/* ----------------------------------------------------------------
 *		Planning
 * ----------------------------------------------------------------
 */

/*
 * Do two target expressions stand for the same input column?  Vars compare
 * by relation and attribute (a Var above an outer join is the same column
 * marked nullable), placeholders by their id.
 */
static bool
same_input(Node *a, Node *b)
{
	if (IsA(a, Var) && IsA(b, Var))
		return ((Var *) a)->varno == ((Var *) b)->varno &&
			((Var *) a)->varattno == ((Var *) b)->varattno &&
			((Var *) a)->varlevelsup == ((Var *) b)->varlevelsup;
	if (IsA(a, PlaceHolderVar) && IsA(b, PlaceHolderVar))
		return ((PlaceHolderVar *) a)->phid == ((PlaceHolderVar *) b)->phid;
	return equal(a, b);
}

/* The 1-based position of expr among exprs (same_input), or 0. */
static int
input_position(Node *expr, List *exprs)
{
	ListCell   *lc;
	int			i = 0;

	foreach(lc, exprs)
	{
		Node	   *e = (Node *) lfirst(lc);

		i++;
		if (IsA(e, TargetEntry))
			e = (Node *) ((TargetEntry *) e)->expr;
		if (same_input(expr, e))
			return i;
	}
	return 0;
}

/* Can every Var and placeholder of node be taken from one of the inputs? */
static bool
inputs_provide(Node *node, RelOptInfo *outerrel, RelOptInfo *innerrel)
{
	List	   *vars = pull_var_clause(node, PVC_INCLUDE_PLACEHOLDERS);
	ListCell   *lc;

	foreach(lc, vars)
	{
		Node	   *v = (Node *) lfirst(lc);

		if (input_position(v, outerrel->reltarget->exprs) == 0 &&
			input_position(v, innerrel->reltarget->exprs) == 0)
			return false;
	}
	return true;
}

/*
 * Can a join of outerrel with innerrel, of this type, be a batched join at
 * all (before looking at its clauses)?  Returns its outer path, or NULL.
 */
static Path *
batch_join_outer_path(PlannerInfo *root, RelOptInfo *joinrel,
					  RelOptInfo *outerrel, RelOptInfo *innerrel,
					  JoinType jointype)
{
	Path	   *outer_path;

	if (!enable_batched_join)
		return NULL;
	if (jointype != JOIN_INNER && jointype != JOIN_LEFT &&
		jointype != JOIN_SEMI && jointype != JOIN_ANTI)
		return NULL;
	if (innerrel->reloptkind != RELOPT_BASEREL || !usage_rel_is_ours(innerrel))
		return NULL;
	/* LATERAL: the nested loop it needs stays the only plan */
	if (!bms_is_empty(innerrel->lateral_relids) ||
		!bms_is_empty(outerrel->lateral_relids) ||
		!bms_is_empty(joinrel->lateral_relids))
		return NULL;
	/* row locks would need EvalPlanQual rechecks of the join */
	if (root->rowMarks != NIL)
		return NULL;
	outer_path = outerrel->cheapest_total_path;
	if (outer_path == NULL || !bms_is_empty(PATH_REQ_OUTER(outer_path)))
		return NULL;
	return outer_path;
}

/* The keys of a batched join, and what they come from. */
typedef struct BatchKeys
{
	List	   *keys;			/* usage_batch_key_to_list elements */
	List	   *key_exprs;		/* per key: the outer value */
	List	   *key_clauses;	/* per key: its join clause */
} BatchKeys;

/*
 * The keys: equality join clauses that supply a parameter.  Returns false
 * when the join cannot be batched (a clause or an output the inputs do
 * not provide, a pseudo-constant clause, no key).
 */
static bool
batch_join_keys(PlannerInfo *root, RelOptInfo *joinrel, RelOptInfo *outerrel,
				RelOptInfo *innerrel, JoinType jointype,
				JoinPathExtraData *extra, BatchKeys *bk)
{
	Bitmapset  *key_params = NULL;
	ListCell   *lc;

	memset(bk, 0, sizeof(BatchKeys));
	foreach(lc, extra->restrictlist)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		int			param;
		Expr	   *value;
		Oid			coltype;

		if (rinfo->pseudoconstant)
			return false;
		if (!inputs_provide((Node *) rinfo->clause, outerrel, innerrel))
			return false;
		/* an outer join's keys must decide the match, not filter after it */
		if (IS_OUTER_JOIN(jointype) && RINFO_IS_PUSHED_DOWN(rinfo, joinrel->relids))
			continue;
		if (!usage_batch_key_clause(root, innerrel, rinfo, outerrel->relids,
									&param, &value, &coltype))
			continue;
		if (bms_is_member(param, key_params))
			continue;
		key_params = bms_add_member(key_params, param);
		bk->keys = lappend(bk->keys,
						   usage_batch_key_to_list(param, coltype,
												   exprType((Node *) value)));
		bk->key_exprs = lappend(bk->key_exprs, value);
		bk->key_clauses = lappend(bk->key_clauses, rinfo->clause);
	}
	if (bk->keys == NIL)
		return false;
	foreach(lc, joinrel->reltarget->exprs)
	{
		if (!inputs_provide((Node *) lfirst(lc), outerrel, innerrel))
			return false;
	}
	return true;
}

/*
 * The distinct keys of one batch, as the planner guesses them: the outer
 * rows of a batch, at most the distinct key values of the outer relation.
 */
static double
keys_per_batch(PlannerInfo *root, Path *outer_path, UsageBatchInner *inner,
			   BatchKeys *bk)
{
	double		outer_rows = Max(outer_path->rows, 1);
	double		ndistinct = estimate_num_groups(root, bk->key_exprs, outer_rows,
												NULL, NULL);

	ndistinct = Max(Min(ndistinct, outer_rows), 1);
	return Min(Min(inner->batch_size, outer_rows), ndistinct);
}

/*
 * Cost the batched join into cpath: the outer path, then per batch the
 * inner scan's fan-out for the batch's keys (its cost is the planner's,
 * usage_cost_calls, as the inner path's), and the local join.
 */
static void
cost_batch_join(PlannerInfo *root, RelOptInfo *joinrel, Path *outer_path,
				UsageBatchInner *inner, double batch_keys,
				ForeignPath *inner_path, BatchKeys *bk, CustomPath *cpath)
{
	double		outer_rows = Max(outer_path->rows, 1);
	double		batch_rows = Min(inner->batch_size, outer_rows);
	double		nbatches = ceil(outer_rows / Max(inner->batch_size, 1));
	double		rows_per_key = inner->fanout * inner->call_rows * inner->local_sel;
	double		candidates = outer_rows * rows_per_key;
	Cost		batch_cost = inner_path->path.total_cost;
	QualCost	qual_cost;

	cost_qual_eval(&qual_cost, bk->key_clauses, root);
	cpath->path.startup_cost = outer_path->startup_cost +
		(outer_path->total_cost - outer_path->startup_cost) * batch_rows / outer_rows +
		batch_cost + qual_cost.startup;
	cpath->path.total_cost = outer_path->total_cost + nbatches * batch_cost +
		qual_cost.startup +
		outer_rows * cpu_tuple_cost +
		candidates * (cpu_tuple_cost + qual_cost.per_tuple) +
		joinrel->rows * cpu_tuple_cost;
}

/*
 * set_join_pathlist_hook: offer the batched join for a join of outerrel with
 * one of our foreign tables (innerrel) whose clauses supply parameters.
 */
static void
batch_join_pathlist(PlannerInfo *root, RelOptInfo *joinrel,
					RelOptInfo *outerrel, RelOptInfo *innerrel,
					JoinType jointype, JoinPathExtraData *extra)
{
	Path	   *outer_path;
	ForeignPath *inner_path;
	UsageBatchInner inner;
	BatchJoinPath *bpath;
	CustomPath *cpath;
	BatchKeys	bk;
	double		batch_keys;

	if (prev_join_pathlist_hook)
		prev_join_pathlist_hook(root, joinrel, outerrel, innerrel, jointype, extra);

	outer_path = batch_join_outer_path(root, joinrel, outerrel, innerrel, jointype);
	if (outer_path == NULL ||
		!batch_join_keys(root, joinrel, outerrel, innerrel, jointype, extra, &bk))
		return;
	if (!usage_batch_inner_info(root, innerrel, bk.keys, &inner))
		return;
	batch_keys = keys_per_batch(root, outer_path, &inner, &bk);
	inner_path = usage_batch_inner_path(root, innerrel, bk.keys, &inner,
										batch_keys);

	bpath = (BatchJoinPath *) newNode(sizeof(BatchJoinPath), T_CustomPath);
	cpath = &bpath->cpath;
	cost_batch_join(root, joinrel, outer_path, &inner, batch_keys,
					inner_path, &bk, cpath);
	cpath->path.pathtype = T_CustomScan;
	cpath->path.parent = joinrel;
	cpath->path.pathtarget = joinrel->reltarget;
	cpath->path.param_info = NULL;
	cpath->path.parallel_aware = false;
	cpath->path.parallel_safe = false;
	cpath->path.parallel_workers = 0;
	cpath->path.rows = joinrel->rows;
	cpath->path.pathkeys = NIL;
	usage_compat_join_disabled_nodes(&cpath->path, outer_path, &inner_path->path);
	cpath->flags = 0;
	cpath->custom_paths = list_make2(outer_path, inner_path);
	cpath->methods = &batch_path_methods;
	bpath->jointype = jointype;
	bpath->batch_size = inner.batch_size;
	bpath->restrictlist = extra->restrictlist;
	bpath->key_exprs = bk.key_exprs;
	bpath->key_clauses = bk.key_clauses;
	add_path(joinrel, &cpath->path);
}

/*
 * The join clauses of the batched join read the columns of its scan tuple
 * (custom_scan_tlist), one entry per input column.  From PostgreSQL 16 on,
 * a Var or placeholder carries the outer joins that null it, and setrefs.c
 * wants every reference to a scan tuple entry to carry the entry's: the
 * clauses of a LEFT join see the inner columns before the join nulls them,
 * the output after, yet both read the same entry (the clauses are evaluated
 * on matched rows only, where the two are the same value).  A copy of node
 * whose Vars and placeholders carry the nullingrels of their entry of tlist
 * (the context); nothing to copy before 16.
 */
static Node *
match_nullingrels_mutator(Node *node, void *context)
{
	List	   *tlist = (List *) context;
	ListCell   *lc;

	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varlevelsup == 0)
	{
		Var		   *var = (Var *) copyObject(node);

		foreach(lc, tlist)
		{
			Var		   *e = (Var *) ((TargetEntry *) lfirst(lc))->expr;

			if (IsA(e, Var) && e->varno == var->varno &&
				e->varattno == var->varattno && e->varlevelsup == 0)
			{
				usage_compat_copy_var_nullingrels(var, e);
				break;
			}
		}
		return (Node *) var;
	}
	if (IsA(node, PlaceHolderVar) && ((PlaceHolderVar *) node)->phlevelsup == 0)
	{
		foreach(lc, tlist)
		{
			PlaceHolderVar *e = (PlaceHolderVar *) ((TargetEntry *) lfirst(lc))->expr;

			if (IsA(e, PlaceHolderVar) && e->phid == ((PlaceHolderVar *) node)->phid)
			{
				PlaceHolderVar *phv = (PlaceHolderVar *) copyObject(node);

				usage_compat_copy_phv_nullingrels(phv, e);
				return (Node *) phv;
			}
		}
	}
	return expression_tree_mutator(node, match_nullingrels_mutator, context);
}

static Node *
match_nullingrels(Node *node, List *tlist)
{
	return match_nullingrels_mutator(node, (void *) tlist);
}

/*
 * PlanCustomPath: the CustomScan.  custom_exprs holds (key clauses, other
 * join clauses, outer key expressions), custom_private (join type, batch
 * size, the source of each scan tuple attribute), plan.qual the clauses
 * that filter after an outer join.
 */
static Plan *
batch_plan_path(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
				List *tlist, List *clauses, List *custom_plans)
{
	CustomScan *cscan = makeNode(CustomScan);
	BatchJoinPath *bpath = (BatchJoinPath *) best_path;
	JoinType	jointype = bpath->jointype;
	List	   *restrictlist = bpath->restrictlist;
	List	   *key_exprs = bpath->key_exprs;
	List	   *key_clauses = bpath->key_clauses;
	Plan	   *outer_plan = (Plan *) linitial(custom_plans);
	Plan	   *inner_plan = (Plan *) lsecond(custom_plans);
	List	   *joinquals;
	List	   *otherquals;
	List	   *extra_quals = NIL;
	List	   *needed;
	List	   *scan_tlist;
	List	   *map = NIL;
	ListCell   *lc;

	if (IS_OUTER_JOIN(jointype))
		extract_actual_join_clauses(restrictlist, rel->relids,
									&joinquals, &otherquals);
	else
	{
		joinquals = extract_actual_clauses(restrictlist, false);
		otherquals = NIL;
	}
	foreach(lc, joinquals)
	{
		if (!list_member_ptr(key_clauses, lfirst(lc)))
			extra_quals = lappend(extra_quals, lfirst(lc));
	}

	/* the scan tuple: every column the output and the clauses use */
	needed = pull_var_clause((Node *) tlist, PVC_INCLUDE_PLACEHOLDERS);
	needed = list_concat(needed, pull_var_clause((Node *) joinquals,
												 PVC_INCLUDE_PLACEHOLDERS));
	needed = list_concat(needed, pull_var_clause((Node *) otherquals,
												 PVC_INCLUDE_PLACEHOLDERS));
	needed = list_concat(needed, pull_var_clause((Node *) key_exprs,
												 PVC_INCLUDE_PLACEHOLDERS));
	scan_tlist = NIL;
	foreach(lc, needed)
	{
		/* one entry per input column: the output's (nulled) Var first */
		if (input_position((Node *) lfirst(lc), scan_tlist) == 0)
			scan_tlist = lappend(scan_tlist,
								 makeTargetEntry((Expr *) copyObject(lfirst(lc)),
												 list_length(scan_tlist) + 1,
												 NULL, false));
	}
	/* the clauses read the same scan tuple entries (PostgreSQL 16+) */
	otherquals = (List *) match_nullingrels((Node *) otherquals, scan_tlist);
	key_exprs = (List *) match_nullingrels((Node *) key_exprs, scan_tlist);
	key_clauses = (List *) match_nullingrels((Node *) key_clauses, scan_tlist);
	extra_quals = (List *) match_nullingrels((Node *) extra_quals, scan_tlist);
	foreach(lc, scan_tlist)
	{
		Node	   *e = (Node *) ((TargetEntry *) lfirst(lc))->expr;
		int			pos;

		if ((pos = input_position(e, outer_plan->targetlist)) > 0)
			map = lappend_int(map, pos);
		else if ((pos = input_position(e, inner_plan->targetlist)) > 0)
			map = lappend_int(map, -pos);
		else
			elog(ERROR, "usage_fdw: a column of the batched join comes from neither input");
	}

	cscan->scan.plan.targetlist = tlist;
	cscan->scan.plan.qual = otherquals;
	cscan->scan.scanrelid = 0;
	cscan->flags = best_path->flags;
	cscan->custom_plans = custom_plans;
	/* the slots of BatchExprsIndex and BatchPrivateIndex, in order */
	cscan->custom_exprs = list_make3(key_clauses, extra_quals, key_exprs);
	cscan->custom_private = list_make3(makeInteger((int) jointype),
									   makeInteger(bpath->batch_size), map);
	Assert(list_length(cscan->custom_exprs) == BATCH_EXPRS_NSLOTS);
	Assert(list_length(cscan->custom_private) == BATCH_PRIVATE_NSLOTS);
	cscan->custom_scan_tlist = scan_tlist;
	cscan->methods = &batch_scan_methods;
	return &cscan->scan.plan;
}

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
