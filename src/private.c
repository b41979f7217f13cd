/*-------------------------------------------------------------------------
 *
 * private.c
 *		  The planner's private data of a scan in its plan: the pushed-down
 *		  conditions and a batched join's keys, as lists of Integer nodes
 *		  (a plan is copied, and may be read back from its text form).
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/value.h"
#include "utils/lsyscache.h"

#include "batch.h"

/*
 * A record of integer fields as a list of Integer nodes, the form it takes
 * in a plan's fdw_private (see UsageScanPrivateIndex); and one field of it.
 */
List *
usage_int_fields_to_list(const int *fields, int nfields)
{
	List	   *result = NIL;

	for (int i = 0; i < nfields; i++)
		result = lappend(result, makeInteger(fields[i]));
	return result;
}

int
usage_int_field(List *fields, int field)
{
	return intVal(list_nth(fields, field));
}

/* The conditions as the USAGE_PRIVATE_CONDS slot of fdw_private. */
List *
usage_conds_to_list(List *conds)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, conds)
	{
		UsageCond  *c = (UsageCond *) lfirst(lc);
		int			fields[USAGE_COND_NFIELDS];

		fields[USAGE_COND_PARAM] = c->param;
		fields[USAGE_COND_OP] = (int) c->op;
		fields[USAGE_COND_EXPR_INDEX] = c->expr_index;
		fields[USAGE_COND_COLTYPE] = (int) c->coltype;
		result = lappend(result, usage_int_fields_to_list(fields, USAGE_COND_NFIELDS));
	}
	return result;
}

/* The conditions of the USAGE_PRIVATE_CONDS slot of fdw_private. */
List *
usage_conds_from_list(List *list)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, list)
	{
		List	   *l = (List *) lfirst(lc);
		UsageCond  *c = palloc0(sizeof(UsageCond));

		c->param = usage_int_field(l, USAGE_COND_PARAM);
		c->op = (UsageCondOp) usage_int_field(l, USAGE_COND_OP);
		c->expr_index = usage_int_field(l, USAGE_COND_EXPR_INDEX);
		c->coltype = (Oid) usage_int_field(l, USAGE_COND_COLTYPE);
		result = lappend(result, c);
	}
	return result;
}

/* One batch key, as an element of the USAGE_PRIVATE_BATCH_KEYS slot. */
List *
usage_batch_key_to_list(int param, Oid coltype, Oid valtype)
{
	int			fields[USAGE_KEY_NFIELDS];

	fields[USAGE_KEY_PARAM] = param;
	fields[USAGE_KEY_COLTYPE] = (int) coltype;
	fields[USAGE_KEY_VALTYPE] = (int) valtype;
	return usage_int_fields_to_list(fields, USAGE_KEY_NFIELDS);
}

/* The batch keys of a plan's fdw_private slot (NIL: none, NULL). */
UsageBatchKeys *
usage_batch_keys_from_list(List *list)
{
	UsageBatchKeys *b;
	ListCell   *lc;
	int			k = 0;

	if (list == NIL)
		return NULL;
	b = palloc0(sizeof(UsageBatchKeys));
	b->nkeys = list_length(list);
	b->params = palloc(sizeof(int) * b->nkeys);
	b->coltypes = palloc(sizeof(Oid) * b->nkeys);
	b->valtypes = palloc(sizeof(Oid) * b->nkeys);
	b->typlens = palloc(sizeof(int16) * b->nkeys);
	b->typbyvals = palloc(sizeof(bool) * b->nkeys);
	foreach(lc, list)
	{
		List	   *key = (List *) lfirst(lc);

		b->params[k] = usage_int_field(key, USAGE_KEY_PARAM);
		b->coltypes[k] = (Oid) usage_int_field(key, USAGE_KEY_COLTYPE);
		b->valtypes[k] = (Oid) usage_int_field(key, USAGE_KEY_VALTYPE);
		get_typlenbyval(b->valtypes[k], &b->typlens[k], &b->typbyvals[k]);
		k++;
	}
	return b;
}

/*
 * One condition per key: "param op value", the k-th key's value being
 * expression expr_base + k.
 */
List *
usage_batch_key_conds(UsageBatchKeys *batch, int expr_base, UsageCondOp op)
{
	List	   *conds = NIL;

	for (int k = 0; batch && k < batch->nkeys; k++)
	{
		UsageCond  *c = palloc0(sizeof(UsageCond));

		c->param = batch->params[k];
		c->op = op;
		c->expr_index = expr_base + k;
		c->coltype = batch->coltypes[k];
		conds = lappend(conds, c);
	}
	return conds;
}

