/*-------------------------------------------------------------------------
 *
 * compat.h
 *		  The differences between the PostgreSQL versions usage_fdw builds
 *		  against, in one place: every PG_VERSION_NUM test of a server API
 *		  that moved or changed its signature is here.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License.
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
 * A function that always throws.  PostgreSQL 18 and later mark it with
 * pg_noreturn before the declaration and have no pg_attribute_noreturn();
 * before, pg_attribute_noreturn() is GCC's attribute, which may stand
 * before the declaration too.  (Guarded: another module may define it.)
 */
#ifndef USAGE_NORETURN
#ifdef pg_noreturn
#define USAGE_NORETURN pg_noreturn
#else
#define USAGE_NORETURN pg_attribute_noreturn()
#endif
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

#endif							/* USAGE_FDW_COMPAT_H */
