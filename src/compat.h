/*-------------------------------------------------------------------------
 *
 * compat.h
 *		  The differences between the PostgreSQL versions usage_fdw builds
 *		  against, in one place: every PG_VERSION_NUM test of a server API
 *		  that moved or changed its signature is here.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#ifndef USAGE_FDW_COMPAT_H
#define USAGE_FDW_COMPAT_H

#include <limits.h>

#include "optimizer/cost.h"
#include "optimizer/pathnode.h"

/* EXPLAIN: ExplainState and ExplainProperty* moved to their own headers */
#include "commands/explain.h"
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif


/*
 * A foreign scan path.  A disabled path (one that cannot serve the query,
 * kept so that the planner always has a plan) weighs as many disabled
 * nodes as USAGE_DISABLED_WEIGHT from PostgreSQL 18 on, and that many times
 * disable_cost before: heavier than what enable_nestloop = off and the like
 * put on a plan that can serve the query, so it is chosen only when no
 * such plan exists.
 */
#define USAGE_DISABLED_WEIGHT 100

static inline ForeignPath *
usage_compat_foreignscan_path(PlannerInfo *root, RelOptInfo *rel, double rows,
							  bool disabled, Cost startup, Cost total,
							  Relids required_outer)
{
#if PG_VERSION_NUM >= 180000
	return create_foreignscan_path(root, rel, NULL, rows,
								   disabled ? USAGE_DISABLED_WEIGHT : 0,
								   startup, total, NIL, required_outer,
								   NULL, NIL, NIL);
#else
	if (disabled)
	{
		startup += disable_cost * USAGE_DISABLED_WEIGHT;
		total += disable_cost * USAGE_DISABLED_WEIGHT;
	}
#if PG_VERSION_NUM >= 170000
	return create_foreignscan_path(root, rel, NULL, rows, startup, total, NIL,
								   required_outer, NULL, NIL, NIL);
#else
	return create_foreignscan_path(root, rel, NULL, rows, startup, total, NIL,
								   required_outer, NULL, NIL);
#endif
#endif
}

/*
 * A join path of the batched join (batchjoin.c) weighs the disabled nodes
 * of its inputs, from PostgreSQL 18 on (before, their disable_cost is in
 * their costs already).
 */
static inline void
usage_compat_join_disabled_nodes(Path *path, Path *outer, Path *inner)
{
#if PG_VERSION_NUM >= 180000
	path->disabled_nodes = outer->disabled_nodes + inner->disabled_nodes;
#endif
}

/*
 * The join clauses of the batched join read the columns of its scan tuple
 * (custom_scan_tlist), one entry per input column.  From PostgreSQL 16 on,
 * a Var or placeholder carries the outer joins that null it, and setrefs.c
 * wants every reference to a scan tuple entry to carry the entry's: the
 * clauses of a LEFT join see the inner columns before the join nulls them,
 * the output after, yet both read the same entry (the clauses are evaluated
 * on matched rows only, where the two are the same value).  Returns a copy
 * of node whose Vars and placeholders carry the nullingrels of their entry
 * of tlist.  Before 16: node as it is.
 */
#if PG_VERSION_NUM >= 160000
#include "nodes/nodeFuncs.h"

static inline Node *
usage_compat_nullingrels_mutator(Node *node, void *context)
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
				var->varnullingrels = bms_copy(e->varnullingrels);
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

				phv->phnullingrels = bms_copy(e->phnullingrels);
				return (Node *) phv;
			}
		}
	}
	return expression_tree_mutator(node, usage_compat_nullingrels_mutator, context);
}
#endif

static inline Node *
usage_compat_match_nullingrels(Node *node, List *tlist)
{
#if PG_VERSION_NUM >= 160000
	return usage_compat_nullingrels_mutator(node, (void *) tlist);
#else
	return node;
#endif
}

/*
 * A function that always throws, written at the very start of the
 * declaration ("USAGE_NORETURN static void f(void)"): PostgreSQL 18's
 * pg_noreturn may be a C23 attribute, which must stand there.  Before,
 * pg_attribute_noreturn() was GCC's attribute (or nothing), which may stand
 * there too.  Functions marked with it are written "USAGE_NORETURN static
 * void f(void);", the attribute first.
 */
#ifdef pg_noreturn
#define USAGE_NORETURN pg_noreturn
#else
#define USAGE_NORETURN pg_attribute_noreturn()
#endif

#endif							/* USAGE_FDW_COMPAT_H */
