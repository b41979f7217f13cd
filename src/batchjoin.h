/*-------------------------------------------------------------------------
 *
 * batchjoin.h
 *		  What the batched join's planning (batchjoin.c) and execution
 *		  (batchexec.c) share: the plan node's name and methods, and the
 *		  slots of its private lists.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#ifndef USAGE_BATCHJOIN_H
#define USAGE_BATCHJOIN_H

#include "nodes/extensible.h"

#include "batch.h"

#define BATCH_JOIN_NAME "UsageBatchedJoin"

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

extern const CustomScanMethods usage_batch_scan_methods;

#endif							/* USAGE_BATCHJOIN_H */
