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

#include "batchjoin.h"

/* usage_fdw.enable_batched_join */
static bool enable_batched_join = true;

static set_join_pathlist_hook_type prev_join_pathlist_hook = NULL;


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


static void batch_join_pathlist(PlannerInfo *root, RelOptInfo *joinrel,
								RelOptInfo *outerrel, RelOptInfo *innerrel,
								JoinType jointype, JoinPathExtraData *extra);
static Plan *batch_plan_path(PlannerInfo *root, RelOptInfo *rel,
							 CustomPath *best_path, List *tlist,
							 List *clauses, List *custom_plans);

static const CustomPathMethods batch_path_methods = {
	.CustomName = BATCH_JOIN_NAME,
	.PlanCustomPath = batch_plan_path,
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
	RegisterCustomScanMethods(&usage_batch_scan_methods);
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
	ListCell   *lc;

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
	/*
	 * A one-time filter on the foreign table (a contradiction such as
	 * "flow_id = 'a' AND flow_id = 'b'", a clause on a parameter only) puts
	 * a gating Result above its scan, which the join would not drive: the
	 * plain plans serve such a join.
	 */
	if (IS_DUMMY_REL(innerrel) || IS_DUMMY_REL(outerrel))
		return NULL;
	foreach(lc, innerrel->baserestrictinfo)
	{
		if (lfirst_node(RestrictInfo, lc)->pseudoconstant)
			return NULL;
	}
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
	cscan->methods = &usage_batch_scan_methods;
	return &cscan->scan.plan;
}

