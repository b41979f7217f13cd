/*-------------------------------------------------------------------------
 *
 * batch.h
 *		  The scan-join protocol of the batched key join: what the join
 *		  (batchjoin.c) knows of the foreign scan it drives, at plan time
 *		  (plan.c) and at run time (scan.c).
 *
 * At run time the join offers the scan the key tuples of a batch
 * (usage_batch_offer: how many fit under the per-scan request limit, known
 * only now), sets those it takes (usage_batch_set_keys), rescans it, and
 * asks each row's key tuple (usage_batch_row_tuple).
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#ifndef USAGE_BATCH_H
#define USAGE_BATCH_H

#include "usage_fdw.h"

/*
 * The parameters that a batched join supplies to the scan of a foreign
 * table, and the keys of the current batch.  The scan makes its requests
 * for each key tuple in turn (one request per distinct key, times the
 * fan-out of the scan's own conditions), each tuple's values given to the
 * parameters as "param = value" conditions.
 */
typedef struct UsageBatchKeys
{
	int			nkeys;
	int		   *params;			/* per key: index in endpoint->params */
	Oid		   *coltypes;		/* per key: type of the parameter's column */
	Oid		   *valtypes;		/* per key: type of the outer value */
	int16	   *typlens;
	bool	   *typbyvals;
	/* set by the batched join before each rescan */
	int			ntuples;
	Datum	   *values;			/* ntuples * nkeys, none NULL */
} UsageBatchKeys;

/* What the planner of a batched join needs to know of the foreign scan. */
typedef struct UsageBatchInner
{
	double		call_rows;		/* rows of one request */
	double		fanout;			/* requests per key (the scan's own IN lists) */
	double		pages;			/* HTTP requests of one call (paging) */
	double		local_sel;		/* of the scan's clauses not pushed down */
	int			max_concurrency;
	int			batch_size;
} UsageBatchInner;

/* the planner side (plan.c; the keys in fdw_private: pushdown.c) */
extern bool usage_rel_is_ours(RelOptInfo *rel);
extern List *usage_batch_key_to_list(int param, Oid coltype, Oid valtype);
extern UsageBatchKeys *usage_batch_keys_from_list(List *list);
extern List *usage_batch_key_conds(UsageBatchKeys *batch, int expr_base,
								   UsageCondOp op);
extern bool usage_batch_key_clause(PlannerInfo *root, RelOptInfo *baserel,
								   RestrictInfo *rinfo, Relids outer_relids,
								   int *param, Expr **value, Oid *coltype);
extern bool usage_batch_inner_info(PlannerInfo *root, RelOptInfo *baserel,
								   List *keys, UsageBatchInner *inner);
extern ForeignPath *usage_batch_inner_path(PlannerInfo *root, RelOptInfo *baserel,
										   List *keys, UsageBatchInner *inner,
										   double keys_per_batch);

/* the scan side (scan.c): a handle on the ForeignScanState */
extern bool usage_is_batch_scan(PlanState *ps, int nkeys);
extern int	usage_batch_offer(PlanState *ps, int ntuples, Datum *values);
extern void usage_batch_set_keys(PlanState *ps, int ntuples, Datum *values);
extern int	usage_batch_row_tuple(PlanState *ps);
extern int	usage_batch_calls(PlanState *ps);

/* the join (batchjoin.c) */
extern void usage_batch_init(void);

#endif							/* USAGE_BATCH_H */
