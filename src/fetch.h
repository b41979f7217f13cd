/*-------------------------------------------------------------------------
 *
 * fetch.h
 *		  The call engine: the calls of one scan, run up to max_concurrency
 *		  at a time, their pages (nextLink), parsed into rows.
 *
 * A scan (scan.c) adds the calls of its value sets, each with a tag (the
 * key tuple of a batched join, or -1), and reads rows in call, page and
 * item order.  The engine owns the transfers in flight: reset and end
 * release them, and so does transaction end.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#ifndef USAGE_FETCH_H
#define USAGE_FETCH_H

#include "usage_fdw.h"

typedef struct UsageFetch UsageFetch;

/* What a scan's requests did, over all its (re)scans (EXPLAIN ANALYZE). */
typedef struct UsageFetchStats
{
	UsageHttpStats http;		/* attempts, retries, bytes, wait */
	int64		pages;			/* HTTP exchanges of all calls */
	int64		rows;			/* rows returned */
	bool		has_total;		/* some page had a totalCount */
	int64		total_count;	/* their sum over the calls */
	int			ncalls;			/* calls of the current (re)scan */
} UsageFetchStats;

extern UsageFetch *usage_fetch_create(UsageOptions *opts, UsageColumn *cols,
									  TupleDesc tupdesc, const char *what,
									  MemoryContext parent);
extern MemoryContext usage_fetch_memory(UsageFetch *f);
extern void usage_fetch_add(UsageFetch *f, UsageValueSet *sets, bool empty,
							int tag);
extern void usage_fetch_start(UsageFetch *f);
extern HeapTuple usage_fetch_next(UsageFetch *f, int *tag);
extern bool usage_fetch_ready(UsageFetch *f);
extern void usage_fetch_reset(UsageFetch *f);
extern void usage_fetch_end(UsageFetch *f);
extern UsageFetchStats *usage_fetch_stats(UsageFetch *f);
extern double usage_fetch_count_calls(const UsageEndpoint *ep,
									  UsageValueSet *sets, bool empty);

#endif							/* USAGE_FETCH_H */
