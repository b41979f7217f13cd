/*-------------------------------------------------------------------------
 *
 * compat.h
 *		  The differences between the PostgreSQL versions usage_fdw builds
 *		  against, in one place: every PG_VERSION_NUM test of a server API
 *		  that moved or changed its signature is here, and nothing else.
 *		  PostgreSQL 15 is the floor: older versions are refused here.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#ifndef USAGE_FDW_COMPAT_H
#define USAGE_FDW_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "usage_fdw needs PostgreSQL 15 or later"
#endif

#include <limits.h>

#include "common/jsonapi.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

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
 * The outer joins that null a Var or a placeholder (PostgreSQL 16 on):
 * copy them from another reference to the same column.  Before 16 there
 * are none to copy.
 */
static inline void
usage_compat_copy_var_nullingrels(Var *to, const Var *from)
{
#if PG_VERSION_NUM >= 160000
	to->varnullingrels = bms_copy(from->varnullingrels);
#endif
}

static inline void
usage_compat_copy_phv_nullingrels(PlaceHolderVar *to, const PlaceHolderVar *from)
{
#if PG_VERSION_NUM >= 160000
	to->phnullingrels = bms_copy(from->phnullingrels);
#endif
}

/* The role a foreign scan's requests are made as (its user mapping's). */
static inline Oid
usage_compat_scan_user(ForeignScan *fsplan, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return OidIsValid(fsplan->checkAsUser) ? fsplan->checkAsUser : GetUserId();
#else
	RangeTblEntry *rte = exec_rt_fetch(fsplan->scan.scanrelid, estate);

	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
#endif
}

/* A wait event set in the current memory context. */
static inline WaitEventSet *
usage_compat_wait_event_set(int nevents)
{
#if PG_VERSION_NUM >= 170000
	return CreateWaitEventSet(NULL, nevents);
#else
	return CreateWaitEventSet(CurrentMemoryContext, nevents);
#endif
}

/*
 * The wait event a backend shows in pg_stat_activity while it waits for
 * the API: a named one ("UsageFdwHttp") from PostgreSQL 17 on, the
 * generic "Extension" before.
 */
static inline uint32
usage_compat_wait_event(void)
{
#if PG_VERSION_NUM >= 170000
	static uint32 event = 0;

	if (event == 0)
		event = WaitEventExtensionNew("UsageFdwHttp");
	return event;
#else
	return PG_WAIT_EXTENSION;
#endif
}

/*
 * A JSON lexer over len bytes of body in the given encoding; need_escapes
 * asks it to de-escape strings (and field names) into lex->strval (17 takes
 * a context to fill, or NULL).
 */
static inline JsonLexContext *
usage_compat_json_lexer(const char *body, size_t len, int encoding,
						bool need_escapes)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, (char *) body, len, encoding,
										need_escapes);
#else
	return makeJsonLexContextCstringLen((char *) body, (int) len, encoding,
										need_escapes);
#endif
}

/*
 * Point a lexer at len bytes of buf, to go on lexing at offset pos (the
 * lexer of json_tuple.c reads a buffer that grows and moves).  The fields
 * are the lexer's public state on every version; 15 and 16 hold the length
 * as an int (the bodies are at most USAGE_MAX_RESPONSE_BYTES).
 */
static inline void
usage_compat_json_lexer_at(JsonLexContext *lex, char *buf, size_t len,
						   size_t pos)
{
	lex->input = buf;
#if PG_VERSION_NUM >= 170000
	lex->input_length = len;
#else
	lex->input_length = (int) len;
#endif
	lex->token_terminator = buf + pos;
	lex->prev_token_terminator = buf + pos;
	lex->line_start = buf;
}

/*
 * What a JSON semantic action returns: an error code from PostgreSQL 16 on,
 * nothing before.  USAGE_JSON_ACTION_DONE ends an action.
 */
#if PG_VERSION_NUM >= 160000
#define USAGE_JSON_ACTION JsonParseErrorType
#define USAGE_JSON_ACTION_DONE return JSON_SUCCESS
#else
#define USAGE_JSON_ACTION void
#define USAGE_JSON_ACTION_DONE return
#endif

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
