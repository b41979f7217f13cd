/*-------------------------------------------------------------------------
 *
 * pushdown.c
 *		  Which WHERE and join clauses become request parameters, and how
 *		  their values are evaluated when the scan starts.
 *
 * At plan time a clause on a parameter column ("tenant_id = $1",
 * "consumable_code IN ('RU','AIU')", "date >= current_date - 30",
 * "aggregate_by_ownership") is turned into a UsageCond whose value
 * expression goes into the plan's fdw_exprs.  At execution time the value
 * expressions are evaluated once per (re)scan and folded into one value set
 * per parameter; the requests of the scan are the cartesian product of the
 * sets.  Every clause is also kept as a local qual, so that a request is
 * only ever a superset of what the query asks for.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "datatype/timestamp.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "parser/parse_coerce.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "batch.h"

/* days between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch) */
#define UNIX_TO_PG_DAYS (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE)
#define MS_PER_DAY INT64CONST(86400000)

/*
 * Is expr a plain Var of baserel, possibly under a binary-compatible cast?
 * Returns its attribute number, or 0.
 */
static AttrNumber
column_of(Expr *expr, RelOptInfo *baserel)
{
	while (expr && IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (expr && IsA(expr, Var))
	{
		Var		   *var = (Var *) expr;

		if (var->varno == (int) baserel->relid && var->varlevelsup == 0 &&
			var->varattno > 0)
			return var->varattno;
	}
	return 0;
}

/*
 * Can this expression be evaluated at the start of the scan?  It must not
 * reference the foreign table itself, may reference other relations only
 * when they are in outer_relids (a parameterized path), and must be stable.
 */
static bool
value_is_pushable(Expr *expr, RelOptInfo *baserel, Relids outer_relids)
{
	Relids		relids = pull_varnos(NULL, (Node *) expr);

	if (bms_is_member(baserel->relid, relids))
		return false;
	if (!bms_is_subset(relids, outer_relids))
		return false;
	if (contain_volatile_functions((Node *) expr))
		return false;
	if (contain_subplans((Node *) expr))
		return false;
	if (contain_agg_clause((Node *) expr) || contain_window_function((Node *) expr))
		return false;
	return true;
}

/*
 * The btree operator families whose operators compare what the request
 * carries: equality in them is equality of the value's text form (text,
 * varchar and name under a deterministic collation, the integer types,
 * uuid, boolean), and the datetime family orders the points in time that a
 * date range sends.  Other families (citext's case-insensitive equality,
 * bpchar's that ignores trailing blanks, numeric's 1.0 = 1) are not: their
 * clauses are checked locally over a wider request.
 */
#define USAGE_DATETIME_BTREE_FAM_OID 434	/* datetime_ops */
#define USAGE_UUID_BTREE_FAM_OID 2968	/* uuid_ops */

static bool
shippable_opfamily(Oid opfamily)
{
	switch (opfamily)
	{
		case TEXT_BTREE_FAM_OID:
		case INTEGER_BTREE_FAM_OID:
		case BOOL_BTREE_FAM_OID:
		case USAGE_UUID_BTREE_FAM_OID:
		case USAGE_DATETIME_BTREE_FAM_OID:
			return true;
	}
	return false;
}

/*
 * The btree strategy of opno for a column of type coltype, and the operator's
 * right-hand type; 0 when the operator is not a built-in btree comparison
 * operator of the column type's default operator family, or when that
 * family's equality is not equality of the text sent (shippable_opfamily).
 */
static int
btree_strategy(Oid opno, Oid coltype, Oid *righttype)
{
	Oid			opclass = GetDefaultOpClass(coltype, BTREE_AM_OID);
	Oid			opfamily;
	int			strategy;
	Oid			lefttype;

	if (!OidIsValid(opclass) || opno >= FirstGenbkiObjectId)
		return 0;
	opfamily = get_opclass_family(opclass);
	if (!shippable_opfamily(opfamily) || !op_in_opfamily(opno, opfamily))
		return 0;
	get_op_opfamily_properties(opno, opfamily, false, &strategy, &lefttype, righttype);
	/* varchar columns use text's operators: compare with the opclass type */
	if (lefttype != get_opclass_input_type(opclass))
		return 0;
	return strategy;
}

static bool
is_datetime_type(Oid typid)
{
	return typid == DATEOID || typid == TIMESTAMPOID || typid == TIMESTAMPTZOID;
}

/*
 * Add a condition (and its value expression) to pd.
 */
static void
add_cond(UsagePushdown *pd, int param, UsageCondOp op, Expr *value,
		 Oid coltype)
{
	UsageCond  *cond = palloc0(sizeof(UsageCond));

	cond->param = param;
	cond->coltype = coltype;
	cond->op = op;
	cond->expr_index = list_length(pd->exprs);
	pd->conds = lappend(pd->conds, cond);
	pd->exprs = lappend(pd->exprs, value);
}

/*
 * Is a value of type valtype sent as the same text that the column's
 * equality compares?  True for the column's own type, and for the string
 * types among themselves (text = name compares the characters, and the
 * request carries the characters).
 */
static bool
same_text_equality(Oid coltype, Oid valtype)
{
	Oid			opctype = get_opclass_input_type(GetDefaultOpClass(coltype, BTREE_AM_OID));

	if (valtype == opctype)
		return true;
	return TypeCategory(opctype) == TYPCATEGORY_STRING &&
		TypeCategory(valtype) == TYPCATEGORY_STRING;
}

/*
 * Add a comparison of a parameter column with a value of type righttype, if
 * the API can express it: any comparison on the date range (of date or
 * timestamp types), equality for the other parameters.
 */
static void
add_typed_cond(UsagePushdown *pd, const UsageEndpoint *ep, UsageColumn *col,
			   int pidx, UsageCondOp op, Expr *value, Oid righttype)
{
	if (ep->params[pidx].kind == USAGE_KIND_DATE_RANGE)
	{
		if (is_datetime_type(col->typid) && is_datetime_type(righttype))
			add_cond(pd, pidx, op, value, col->typid);
		return;
	}
	if (op != USAGE_OP_EQ && op != USAGE_OP_ANY)
		return;
	/* start_date = '2024-01-01'::date: the value as a timestamp */
	if (ep->params[pidx].kind == USAGE_KIND_EPOCH_MS &&
		(col->typid == TIMESTAMPTZOID || col->typid == TIMESTAMPOID) &&
		is_datetime_type(righttype))
	{
		add_cond(pd, pidx, op, value, col->typid);
		return;
	}
	if (same_text_equality(col->typid, righttype))
		add_cond(pd, pidx, op, value, col->typid);
}

/* What a clause is classified against: the relation, its columns, ... */
typedef struct ClassifyCtx
{
	RelOptInfo *baserel;
	const UsageEndpoint *ep;
	UsageColumn *cols;
	Relids		outer_relids;	/* where a value may come from */
} ClassifyCtx;

static void classify_expr(ClassifyCtx *cx, Expr *clause, UsagePushdown *pd);

/* The parameter of the column expr is (see column_of), or -1. */
static int
param_of(ClassifyCtx *cx, Expr *expr, AttrNumber *attno)
{
	*attno = column_of(expr, cx->baserel);
	if (*attno == 0)
		return -1;
	return cx->cols[*attno - 1].param;
}

/*
 * A boolean parameter column tested on its own: aggregate_by_ownership,
 * NOT aggregate_by_ownership, aggregate_by_ownership IS TRUE, ...  Returns
 * whether the clause has that form.
 */
static bool
classify_boolean(ClassifyCtx *cx, Expr *clause, UsagePushdown *pd)
{
	Expr	   *arg = NULL;
	bool		value = true;
	AttrNumber	attno;
	int			pidx;

	if (IsA(clause, Var))
		arg = clause;
	else if (is_notclause(clause))
	{
		arg = get_notclausearg(clause);
		value = false;
	}
	else if (IsA(clause, BooleanTest))
	{
		BooleanTest *bt = (BooleanTest *) clause;

		arg = bt->arg;
		if (bt->booltesttype == IS_TRUE || bt->booltesttype == IS_NOT_FALSE)
			value = true;
		else if (bt->booltesttype == IS_FALSE || bt->booltesttype == IS_NOT_TRUE)
			value = false;
		else
			arg = NULL;
	}
	if (arg == NULL || (pidx = param_of(cx, arg, &attno)) < 0 ||
		cx->ep->params[pidx].kind != USAGE_KIND_BOOLEAN ||
		cx->cols[attno - 1].typid != BOOLOID)
		return false;
	add_cond(pd, pidx, USAGE_OP_EQ, (Expr *) makeBoolConst(value, false),
			 BOOLOID);
	return true;
}

/*
 * The array of the values of an OR of equalities: a constant array when
 * they all are non-null constants (so that EXPLAIN and the planner know
 * the fan-out), else an ARRAY[] expression.
 */
static Expr *
or_values_array(List *values, Oid valtype)
{
	ArrayExpr  *arr;
	ListCell   *lc;
	Datum	   *elems;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			i = 0;

	foreach(lc, values)
	{
		if (!IsA(lfirst(lc), Const) || ((Const *) lfirst(lc))->constisnull)
		{
			arr = makeNode(ArrayExpr);
			arr->array_typeid = get_array_type(valtype);
			arr->element_typeid = valtype;
			arr->elements = values;
			arr->multidims = false;
			arr->location = -1;
			return (Expr *) arr;
		}
	}

	elems = palloc(sizeof(Datum) * list_length(values));
	get_typlenbyvalalign(valtype, &typlen, &typbyval, &typalign);
	foreach(lc, values)
		elems[i++] = ((Const *) lfirst(lc))->constvalue;
	return (Expr *) makeConst(get_array_type(valtype), -1, InvalidOid, -1,
							  PointerGetDatum(construct_array(elems, i, valtype,
															  typlen, typbyval,
															  typalign)),
							  false, false);
}

/*
 * The equality conditions of one arm of an OR: the arm itself, or each
 * clause of an AND ("(tenant, flow_id) IN (('a', 'x'), ('b', 'y'))" is an
 * OR of ANDs).  Returns per parameter the value of its first equality (or
 * NULL) and the type of the column compared; false when the arm holds no
 * equality at all.
 */
static bool
or_arm_equalities(ClassifyCtx *cx, Expr *arm, Expr **values, Oid *coltypes)
{
	UsagePushdown pd = {0};
	List	   *clauses;
	ListCell   *lc;
	bool		found = false;

	clauses = is_andclause(arm) ? ((BoolExpr *) arm)->args : list_make1(arm);
	foreach(lc, clauses)
		classify_expr(cx, (Expr *) lfirst(lc), &pd);
	memset(values, 0, sizeof(Expr *) * cx->ep->nparams);
	foreach(lc, pd.conds)
	{
		UsageCond  *c = (UsageCond *) lfirst(lc);

		if (c->op != USAGE_OP_EQ || values[c->param] != NULL ||
			cx->ep->params[c->param].kind == USAGE_KIND_DATE_RANGE)
			continue;
		values[c->param] = (Expr *) list_nth(pd.exprs, c->expr_index);
		coltypes[c->param] = c->coltype;
		found = true;
	}
	return found;
}

/*
 * An OR whose every arm fixes a parameter by equality ("col = a OR col =
 * b", "(col, other) IN ((a, x), (b, y))"): a fan-out over the values of
 * the arms, like IN, for each such parameter.  The requests are a superset
 * of what the OR asks for (each parameter's values are combined with every
 * value of the others); the OR itself is checked locally.
 */
static void
classify_or_of_equalities(ClassifyCtx *cx, BoolExpr *clause, UsagePushdown *pd)
{
	int			nparams = cx->ep->nparams;
	List	  **values = palloc0(sizeof(List *) * nparams);
	bool	   *common = palloc(sizeof(bool) * nparams);
	Expr	  **arm_values = palloc(sizeof(Expr *) * nparams);
	Oid		   *coltypes = palloc(sizeof(Oid) * nparams);
	ListCell   *lc;

	memset(common, true, sizeof(bool) * nparams);
	foreach(lc, clause->args)
	{
		if (!or_arm_equalities(cx, (Expr *) lfirst(lc), arm_values, coltypes))
			return;
		for (int p = 0; p < nparams; p++)
		{
			Expr	   *v = arm_values[p];

			if (v == NULL ||
				(values[p] != NIL &&
				 exprType((Node *) v) != exprType(linitial(values[p]))))
				common[p] = false;
			else
				values[p] = lappend(values[p], v);
		}
	}
	for (int p = 0; p < nparams; p++)
	{
		Oid			valtype;

		if (!common[p] || values[p] == NIL)
			continue;
		valtype = exprType(linitial(values[p]));
		if (OidIsValid(get_array_type(valtype)))
			add_cond(pd, p, USAGE_OP_ANY, or_values_array(values[p], valtype),
					 coltypes[p]);
	}
}

/* The condition operator of a btree strategy (-1 for none). */
static int
strategy_op(int strategy)
{
	switch (strategy)
	{
		case BTLessStrategyNumber:
			return USAGE_OP_LT;
		case BTLessEqualStrategyNumber:
			return USAGE_OP_LE;
		case BTEqualStrategyNumber:
			return USAGE_OP_EQ;
		case BTGreaterEqualStrategyNumber:
			return USAGE_OP_GE;
		case BTGreaterStrategyNumber:
			return USAGE_OP_GT;
	}
	return -1;
}

/* Is a comparison under this collation a comparison of the text sent? */
static bool
deterministic_collation(Oid collid)
{
	return !OidIsValid(collid) || get_collation_isdeterministic(collid);
}

/*
 * "col op value" or "value op col", op a btree comparison of the column
 * type (equality under a nondeterministic collation is not equality of
 * text).
 */
static void
classify_comparison(ClassifyCtx *cx, OpExpr *op, UsagePushdown *pd)
{
	Expr	   *left,
			   *right,
			   *value;
	Oid			opno = op->opno;
	Oid			righttype;
	AttrNumber	attno;
	int			pidx;
	int			cop;

	if (list_length(op->args) != 2)
		return;
	left = linitial(op->args);
	right = lsecond(op->args);
	if (column_of(left, cx->baserel) > 0)
		value = right;
	else if (column_of(right, cx->baserel) > 0)
	{
		value = left;
		left = right;
		opno = get_commutator(opno);
		if (!OidIsValid(opno))
			return;
	}
	else
		return;

	if ((pidx = param_of(cx, left, &attno)) < 0 ||
		!value_is_pushable(value, cx->baserel, cx->outer_relids))
		return;
	cop = strategy_op(btree_strategy(opno, cx->cols[attno - 1].typid, &righttype));
	if (cop < 0 || !deterministic_collation(op->inputcollid))
		return;
	add_typed_cond(pd, cx->ep, &cx->cols[attno - 1], pidx, (UsageCondOp) cop,
				   value, righttype);
}

/* "col = ANY(array)" (and IN lists): a fan-out. */
static void
classify_saop(ClassifyCtx *cx, ScalarArrayOpExpr *saop, UsagePushdown *pd)
{
	Expr	   *value;
	Oid			righttype;
	AttrNumber	attno;
	int			pidx;

	if (!saop->useOr || list_length(saop->args) != 2)
		return;
	if ((pidx = param_of(cx, linitial(saop->args), &attno)) < 0)
		return;
	value = lsecond(saop->args);
	if (!value_is_pushable(value, cx->baserel, cx->outer_relids))
		return;
	if (btree_strategy(saop->opno, cx->cols[attno - 1].typid, &righttype) != BTEqualStrategyNumber ||
		!deterministic_collation(saop->inputcollid))
		return;
	add_typed_cond(pd, cx->ep, &cx->cols[attno - 1], pidx, USAGE_OP_ANY,
				   value, righttype);
}

/*
 * "col IS NOT DISTINCT FROM value": the same as "col = value" when the
 * value is a non-null constant.  A value known only at execution (a
 * parameter) is pushed for an echo column only: its rows never hold NULL
 * there (each row is of the value its request carried), so a NULL value
 * asks for no row, as "col = NULL" does; a response column may hold NULL,
 * which no request can ask for.
 */
static void
classify_not_distinct(ClassifyCtx *cx, DistinctExpr *dist, UsagePushdown *pd)
{
	UsagePushdown eq = {0};
	AttrNumber	attno = column_of(linitial(dist->args), cx->baserel);
	Node	   *value;

	if (list_length(dist->args) != 2)
		return;
	if (attno == 0)
		attno = column_of(lsecond(dist->args), cx->baserel);
	value = column_of(linitial(dist->args), cx->baserel) > 0 ?
		lsecond(dist->args) : linitial(dist->args);
	if (attno == 0 || (IsA(value, Const) && ((Const *) value)->constisnull))
		return;
	if (!IsA(value, Const) && cx->cols[attno - 1].kind != USAGE_COL_ECHO)
		return;
	classify_comparison(cx, (OpExpr *) dist, &eq);
	if (list_length(eq.conds) != 1 ||
		((UsageCond *) linitial(eq.conds))->op != USAGE_OP_EQ)
		return;
	add_cond(pd, ((UsageCond *) linitial(eq.conds))->param, USAGE_OP_EQ,
			 (Expr *) linitial(eq.exprs),
			 ((UsageCond *) linitial(eq.conds))->coltype);
}

/* Classify one clause expression (see usage_classify_clause). */
static void
classify_expr(ClassifyCtx *cx, Expr *clause, UsagePushdown *pd)
{
	if (is_notclause(clause) && IsA(get_notclausearg(clause), DistinctExpr))
	{
		classify_not_distinct(cx, (DistinctExpr *) get_notclausearg(clause), pd);
		return;
	}
	if (classify_boolean(cx, clause, pd))
		return;
	if (is_orclause(clause))
		classify_or_of_equalities(cx, (BoolExpr *) clause, pd);
	else if (IsA(clause, OpExpr))
		classify_comparison(cx, (OpExpr *) clause, pd);
	else if (IsA(clause, ScalarArrayOpExpr))
		classify_saop(cx, (ScalarArrayOpExpr *) clause, pd);
}

/*
 * Classify one clause.  If it restricts a parameter column in a way the API
 * can express, add a condition to pd.  outer_relids is the set of relations
 * that a parameterized path takes values from (NULL for a plain scan).
 */
void
usage_classify_clause(PlannerInfo *root, RelOptInfo *baserel,
					  const UsageEndpoint *ep, UsageColumn *cols,
					  RestrictInfo *rinfo, Relids outer_relids,
					  UsagePushdown *pd)
{
	ClassifyCtx cx;

	cx.baserel = baserel;
	cx.ep = ep;
	cx.cols = cols;
	cx.outer_relids = outer_relids;
	classify_expr(&cx, rinfo->clause, pd);
}

/*
 * Does some condition or option give the parameter a value?  For the date
 * range this means a lower bound.
 */
bool
usage_param_supplied(const UsageEndpoint *ep, UsageOptions *opts,
					 List *conds, int param)
{
	const UsageParamDef *def = &ep->params[param];
	ListCell   *lc;

	if (def->key == NULL)
		return usage_param_default(opts, def) != NULL;

	foreach(lc, conds)
	{
		UsageCond  *cond = (UsageCond *) lfirst(lc);

		if (cond->param != param)
			continue;
		if (def->kind != USAGE_KIND_DATE_RANGE)
			return true;
		if (cond->op == USAGE_OP_EQ || cond->op == USAGE_OP_ANY ||
			cond->op == USAGE_OP_GE || cond->op == USAGE_OP_GT)
			return true;
	}
	return usage_param_default(opts, def) != NULL;
}

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

/* ----------------------------------------------------------------
 *		Execution-time evaluation
 * ----------------------------------------------------------------
 */

/* date < timestamp < timestamptz: the type a comparison of two of them uses */
static int
datetime_rank(Oid typid)
{
	return typid == DATEOID ? 0 : typid == TIMESTAMPOID ? 1 : 2;
}

/*
 * The day of a date, timestamp or timestamptz bound, as days since
 * 1970-01-01, in the frame of the comparison with a column of type coltype:
 * both sides are taken to the wider of the two types, as PostgreSQL's
 * cross-type operators do (a date is midnight, a timestamp without time
 * zone is read in the session's time zone when compared with timestamptz),
 * and the day is that of the bound in that type (for timestamptz, in the
 * session's time zone, as the cast to date gives it).  A row of API day d
 * holds the start of day d in that frame, so comparing days is exact.
 * *exact tells whether the bound is the start of its day.  Returns false
 * for an infinite bound (*sign tells which infinity).
 */
static bool
bound_day(Datum d, Oid typid, Oid coltype, int64 *day, bool *exact, int *sign)
{
	Oid			frame = datetime_rank(typid) >= datetime_rank(coltype) ? typid : coltype;
	DateADT		date;

	d = usage_coerce_point_in_time(d, typid, frame);
	if (frame == DATEOID)
	{
		date = DatumGetDateADT(d);
		*exact = true;
	}
	else
	{
		Timestamp	ts = DatumGetTimestamp(d);

		if (TIMESTAMP_NOT_FINITE(ts))
		{
			*sign = TIMESTAMP_IS_NOBEGIN(ts) ? -1 : 1;
			return false;
		}
		if (frame == TIMESTAMPOID)
		{
			date = DatumGetDateADT(DirectFunctionCall1(timestamp_date, d));
			*exact = DatumGetTimestamp(DirectFunctionCall1(date_timestamp,
														   DateADTGetDatum(date))) == ts;
		}
		else
		{
			date = DatumGetDateADT(DirectFunctionCall1(timestamptz_date, d));
			*exact = DatumGetTimestampTz(DirectFunctionCall1(date_timestamptz,
															 DateADTGetDatum(date))) == ts;
		}
	}
	if (DATE_NOT_FINITE(date))
	{
		*sign = DATE_IS_NOBEGIN(date) ? -1 : 1;
		return false;
	}
	*day = (int64) date + UNIX_TO_PG_DAYS;
	return true;
}

/*
 * A point in time as unix milliseconds.  timestamp without time zone is
 * taken as UTC, a date as its UTC midnight, a bigint as milliseconds.
 */
int64
usage_datum_to_epoch_ms(Datum d, Oid typid, const char *colname)
{
	switch (typid)
	{
		case INT8OID:
			return DatumGetInt64(d);
		case INT4OID:
			return DatumGetInt32(d);
		case DATEOID:
			{
				DateADT		date = DatumGetDateADT(d);

				if (DATE_NOT_FINITE(date))
					break;
				return ((int64) date + UNIX_TO_PG_DAYS) * MS_PER_DAY;
			}
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			{
				Timestamp	ts = DatumGetTimestamp(d);
				int64		ms;

				if (TIMESTAMP_NOT_FINITE(ts))
					break;
				/* floor division to milliseconds */
				ms = ts / 1000;
				if (ts < 0 && ms * 1000 != ts)
					ms--;
				return ms + (int64) UNIX_TO_PG_DAYS * MS_PER_DAY;
			}
		default:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"%s\" has type %s, which cannot be sent as a point in time",
							colname, format_type_be(typid)),
					 errhint("Declare it as timestamptz, timestamp, date or bigint (milliseconds).")));
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("an infinite value for column \"%s\" cannot be sent to the API", colname)));
	return 0;					/* keep compiler quiet */
}

/*
 * A date, timestamp or timestamptz value as the point-in-time type of the
 * column it is compared with, the way the comparison operator sees it (a
 * date is midnight in the session's time zone for timestamptz).
 */
Datum
usage_coerce_point_in_time(Datum d, Oid from, Oid to)
{
	if (from == to || !OidIsValid(to))
		return d;
	if (to == TIMESTAMPTZOID && from == DATEOID)
		return DirectFunctionCall1(date_timestamptz, d);
	if (to == TIMESTAMPTZOID && from == TIMESTAMPOID)
		return DirectFunctionCall1(timestamp_timestamptz, d);
	if (to == TIMESTAMPOID && from == DATEOID)
		return DirectFunctionCall1(date_timestamp, d);
	if (to == TIMESTAMPOID && from == TIMESTAMPTZOID)
		return DirectFunctionCall1(timestamptz_timestamp, d);
	return d;
}

/*
 * A value of type typid as a datum of the column's type, for the echo
 * column: the datum itself when the types agree (or are binary compatible),
 * else through the value's text form and the column type's input function
 * (a name compared with a text column, a boolean parameter on a text
 * column).  Always an own copy: a join value points into the outer tuple.
 */
static Datum
echo_datum(UsageColumn *col, Datum d, Oid typid)
{
	int16		typlen;
	bool		typbyval;
	Oid			outfunc;
	bool		isvarlena;

	if (typid == col->typid || IsBinaryCoercible(typid, col->typid))
	{
		get_typlenbyval(typid, &typlen, &typbyval);
		return datumCopy(d, typbyval, typlen);
	}
	getTypeOutputInfo(typid, &outfunc, &isvarlena);
	return InputFunctionCall(&col->inflinfo, OidOutputFunctionCall(outfunc, d),
							 col->typioparam, col->typmod);
}

/*
 * The boolean a value of a boolean parameter stands for: a boolean as it
 * is, any other type through its text form ('true', 'f', '1', ...), never
 * by reinterpreting the datum.
 */
static bool
boolean_value(UsageColumn *col, Datum d, Oid typid)
{
	Oid			outfunc;
	bool		isvarlena;
	char	   *text;
	bool		result;

	if (typid == BOOLOID)
		return DatumGetBool(d);
	getTypeOutputInfo(typid, &outfunc, &isvarlena);
	text = OidOutputFunctionCall(outfunc, d);
	if (!parse_bool(text, &result))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("value \"%s\" of column \"%s\" is not a boolean", text, col->name),
				 errdetail("The column is a boolean request parameter: the API takes true or false.")));
	return result;
}

/*
 * Convert one non-null value of a parameter column into its request form.
 */
static void
make_value(UsageValue *v, const UsageParamDef *def, UsageColumn *col,
		   Datum d, Oid typid)
{
	Oid			outfunc;
	bool		isvarlena;

	if (def->kind == USAGE_KIND_EPOCH_MS && is_datetime_type(typid) &&
		is_datetime_type(col->typid))
	{
		d = usage_coerce_point_in_time(d, typid, col->typid);
		typid = col->typid;
	}

	memset(v, 0, sizeof(UsageValue));
	v->echo = echo_datum(col, d, typid);
	v->echo_isnull = false;
	switch (def->kind)
	{
		case USAGE_KIND_BOOLEAN:
			v->boolval = boolean_value(col, d, typid);
			v->text = pstrdup(v->boolval ? "true" : "false");
			break;
		case USAGE_KIND_EPOCH_MS:
			v->num = usage_datum_to_epoch_ms(d, typid, col->name);
			v->text = psprintf(INT64_FORMAT, v->num);
			break;
		default:
			getTypeOutputInfo(typid, &outfunc, &isvarlena);
			v->text = OidOutputFunctionCall(outfunc, d);
			break;
	}
	if (def->guid)
		usage_check_guid(v->text, psprintf("column \"%s\"", col->name));
}

/* Keep only the values of set that also occur in other (by text). */
static void
intersect_values(UsageValueSet *set, UsageValue *other, int nother)
{
	int			n = 0;

	for (int i = 0; i < set->nvalues; i++)
	{
		for (int j = 0; j < nother; j++)
		{
			if (strcmp(set->values[i].text, other[j].text) == 0)
			{
				set->values[n++] = set->values[i];
				break;
			}
		}
	}
	set->nvalues = n;
}

/* Drop duplicate values (same text), keeping the first. */
static int
dedup_values(UsageValue *vals, int n)
{
	int			m = 0;

	for (int i = 0; i < n; i++)
	{
		bool		dup = false;

		for (int j = 0; j < m && !dup; j++)
			dup = strcmp(vals[j].text, vals[i].text) == 0;
		if (!dup)
			vals[m++] = vals[i];
	}
	return m;
}

/* Narrow a date range to [lo, hi] (either side optional). */
static void
narrow_range(UsageValueSet *set, bool has_lo, int64 lo, bool has_hi, int64 hi)
{
	if (has_lo && (!set->has_low || lo > set->low_day))
	{
		set->low_day = lo;
		set->has_low = true;
	}
	if (has_hi && (!set->has_high || hi < set->high_day))
	{
		set->high_day = hi;
		set->has_high = true;
	}
}

/*
 * Narrow a date range by one bound "col op value": the days d whose start
 * (in the comparison's frame, see bound_day) satisfies the comparison.
 */
static void
apply_range_bound(UsageValueSet *set, UsageCondOp op, Datum d, Oid typid,
				  Oid coltype, bool *empty)
{
	int64		day;
	bool		exact;
	int			sign = 0;

	if (!bound_day(d, typid, coltype, &day, &exact, &sign))
	{
		/* infinite bound: no bound at all, or nothing can satisfy it */
		if (((op == USAGE_OP_GE || op == USAGE_OP_GT) && sign > 0) ||
			((op == USAGE_OP_LE || op == USAGE_OP_LT) && sign < 0) ||
			op == USAGE_OP_EQ)
			*empty = true;
		return;
	}

	switch (op)
	{
		case USAGE_OP_EQ:
			if (!exact)
				*empty = true;	/* no day starts at that instant */
			narrow_range(set, true, day, true, day);
			break;
		case USAGE_OP_GE:
			narrow_range(set, true, exact ? day : day + 1, false, 0);
			break;
		case USAGE_OP_GT:
			narrow_range(set, true, day + 1, false, 0);
			break;
		case USAGE_OP_LE:
			narrow_range(set, false, 0, true, day);
			break;
		case USAGE_OP_LT:
			narrow_range(set, false, 0, true, exact ? day - 1 : day);
			break;
		default:
			break;
	}
}

/*
 * The elements of an array datum (of any element type).
 */
static int
array_elements(Datum d, Oid *elemtype, Datum **elems, bool **nulls)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			n;

	*elemtype = ARR_ELEMTYPE(arr);
	get_typlenbyvalalign(*elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, *elemtype, typlen, typbyval, typalign, elems, nulls, &n);
	return n;
}

/*
 * The distinct non-null elements of an array datum, told apart by their
 * type's output text, in order of first occurrence: the one count of the
 * values of an IN list that the planner's fan-out estimate, EXPLAIN's
 * Fan-out and the executor's requests share.  *elems (and *texts unless
 * NULL) get the distinct elements (and their texts).
 */
int
usage_distinct_elements(Datum array, Oid *elemtype, Datum **elems,
						char ***texts)
{
	bool	   *nulls;
	int			n = array_elements(array, elemtype, elems, &nulls);
	char	  **t = palloc(sizeof(char *) * Max(n, 1));
	Oid			outfunc;
	bool		isvarlena;
	int			m = 0;

	getTypeOutputInfo(*elemtype, &outfunc, &isvarlena);
	for (int i = 0; i < n; i++)
	{
		bool		dup = false;

		if (nulls[i])
			continue;
		t[m] = OidOutputFunctionCall(outfunc, (*elems)[i]);
		for (int j = 0; j < m && !dup; j++)
			dup = strcmp(t[j], t[m]) == 0;
		if (!dup)
			(*elems)[m++] = (*elems)[i];
	}
	if (texts)
		*texts = t;
	return m;
}

/* date IN (...): the range from the least to the greatest value */
static void
apply_range_any(UsageValueSet *set, Datum d, Oid coltype, bool *empty)
{
	Oid			elemtype;
	Datum	   *elems;
	bool	   *nulls;
	int			n = array_elements(d, &elemtype, &elems, &nulls);
	int64		lo = PG_INT64_MAX,
				hi = PG_INT64_MIN;

	for (int i = 0; i < n; i++)
	{
		int64		day;
		bool		exact;
		int			sign;

		if (nulls[i] || !bound_day(elems[i], elemtype, coltype, &day, &exact, &sign) ||
			!exact)
			continue;
		lo = Min(lo, day);
		hi = Max(hi, day);
	}
	if (lo > hi)
	{
		*empty = true;
		return;
	}
	narrow_range(set, true, lo, true, hi);
}

/* One condition on a date range parameter. */
static void
apply_range_cond(UsageValueSet *set, UsageCond *cond, Datum d, Oid typid,
				 bool *empty)
{
	if (cond->op == USAGE_OP_ANY)
		apply_range_any(set, d, cond->coltype, empty);
	else
		apply_range_bound(set, cond->op, d, typid, cond->coltype, empty);
}

/*
 * For EXPLAIN: the range [start_ms, end_ms) that constant conditions on a
 * date-range parameter give.  Returns false when some condition on it is
 * not a constant.  *has_end is false for an open upper bound (now).
 */
bool
usage_const_date_range(List *conds, List *exprs, int param,
					   int64 *start_ms, int64 *end_ms, bool *has_end,
					   bool *empty)
{
	UsageValueSet set;
	ListCell   *lc;

	memset(&set, 0, sizeof(set));
	*empty = false;
	foreach(lc, conds)
	{
		UsageCond  *cond = (UsageCond *) lfirst(lc);
		Const	   *c;

		if (cond->param != param)
			continue;
		c = (Const *) list_nth(exprs, cond->expr_index);
		if (!IsA(c, Const))
			return false;
		if (c->constisnull)
		{
			*empty = true;
			continue;
		}
		apply_range_cond(&set, cond, c->constvalue, c->consttype, empty);
	}
	if (!set.has_low || (set.has_high && set.low_day > set.high_day))
		*empty = true;
	*start_ms = set.low_day * MS_PER_DAY;
	*has_end = set.has_high;
	*end_ms = (set.high_day + 1) * MS_PER_DAY;
	return true;
}

/* The column of parameter p, or NULL when the table has none. */
static UsageColumn *
param_column(UsageColumn *cols, const int *param_col, int p)
{
	return param_col[p] >= 0 ? &cols[param_col[p]] : NULL;
}

/*
 * The values of one equality or IN condition on a (non-range) parameter,
 * evaluated, deduplicated; NULLs never match and are dropped.
 */
static UsageValue *
cond_values(const UsageParamDef *def, UsageColumn *col, UsageCond *cond,
			Datum d, Oid typid, int *nvals)
{
	UsageValue *vals;
	Oid			elemtype;
	Datum	   *elems;
	int			n;

	if (cond->op != USAGE_OP_ANY)
	{
		vals = palloc(sizeof(UsageValue));
		make_value(&vals[0], def, col, d, typid);
		*nvals = 1;
		return vals;
	}
	n = usage_distinct_elements(d, &elemtype, &elems, NULL);
	vals = palloc(sizeof(UsageValue) * Max(n, 1));
	for (int i = 0; i < n; i++)
		make_value(&vals[i], def, col, elems[i], elemtype);
	/* distinct texts may still be one request value ('t' and 'true') */
	*nvals = dedup_values(vals, n);
	return vals;
}

/*
 * The request value of a parameter bound by an option (table over server):
 * sent as written, echoed through the column's type.  *canonical is the
 * text the column's type gives it, which is what condition values are
 * matched against (a uuid binding in upper case matches a lower-case
 * condition).
 */
static void
binding_value(UsageValue *v, const UsageParamDef *def, UsageColumn *col,
			  const char *binding, char **canonical)
{
	memset(v, 0, sizeof(UsageValue));
	v->text = pstrdup(binding);
	if (def->kind == USAGE_KIND_BOOLEAN)
	{
		(void) parse_bool(binding, &v->boolval);
		v->text = pstrdup(v->boolval ? "true" : "false");
	}
	*canonical = v->text;
	v->echo_isnull = true;
	if (col == NULL)
		return;
	v->echo = InputFunctionCall(&col->inflinfo, (char *) binding,
								col->typioparam, col->typmod);
	v->echo_isnull = false;
	if (def->kind == USAGE_KIND_EPOCH_MS)
		v->num = usage_datum_to_epoch_ms(v->echo, col->typid, col->name);
	else if (def->kind != USAGE_KIND_BOOLEAN)
	{
		Oid			outfunc;
		bool		isvarlena;

		getTypeOutputInfo(col->typid, &outfunc, &isvarlena);
		*canonical = OidOutputFunctionCall(outfunc, v->echo);
	}
}

/*
 * Apply a binding to a parameter's value set.  A bound parameter takes the
 * binding's value in every request; conditions can only narrow that: when
 * they exclude it, no request is sent.
 */
static void
apply_binding(UsageValueSet *set, const UsageParamDef *def, UsageColumn *col,
			  const char *binding, bool constrained, bool *empty)
{
	UsageValue *bound = palloc(sizeof(UsageValue));
	char	   *canonical;
	bool		allowed = !constrained;

	binding_value(bound, def, col, binding, &canonical);
	for (int i = 0; i < set->nvalues && !allowed; i++)
		allowed = strcmp(set->values[i].text, canonical) == 0;
	set->values = bound;
	set->nvalues = allowed ? 1 : 0;
	set->sent = true;
	if (!allowed)
		*empty = true;
}

/*
 * A parameter that neither a condition nor a binding gives a value: the
 * request does not carry it, and its echo column shows the API's default
 * (or NULL).
 */
static void
not_sent(UsageValueSet *set, const UsageParamDef *def, UsageColumn *col)
{
	set->sent = false;
	set->nvalues = 1;
	set->values = palloc0(sizeof(UsageValue));
	set->values[0].echo_isnull = true;
	if (col && def->absent_echo)
	{
		set->values[0].echo = InputFunctionCall(&col->inflinfo,
												(char *) def->absent_echo,
												col->typioparam, col->typmod);
		set->values[0].echo_isnull = false;
	}
}

/*
 * Finish a date range: check it, and compute what is sent, the half-open
 * [start_ms, end_ms) on UTC midnights; an open upper end is now.
 */
static void
finish_date_range(const UsageEndpoint *ep, const UsageParamDef *def,
				  UsageValueSet *set, bool *empty)
{
	if (set->has_low && set->has_high && set->low_day > set->high_day)
		*empty = true;
	if (!set->has_low && !*empty)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("endpoint \"%s\" needs a lower bound on \"%s\", and the query's bound has no finite value",
						ep->name, def->key),
				 errhint("Add a WHERE clause such as: %s.", ep->example_where)));
	set->sent = true;
	set->nvalues = 1;
	if (*empty || !set->has_low)
		return;
	set->start_ms = set->low_day * MS_PER_DAY;
	if (set->has_high)
		set->end_ms = (set->high_day + 1) * MS_PER_DAY;
	else
		set->end_ms = usage_datum_to_epoch_ms(TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
											  TIMESTAMPTZOID, def->key);
	if (set->start_ms >= set->end_ms)
		*empty = true;
}

/*
 * Evaluate the pushed-down conditions of a scan and return one value set
 * per parameter of the endpoint.  *empty is set when the conditions cannot
 * be satisfied (col = NULL, an empty IN list, a contradictory range,
 * tenant_id = 'a' AND tenant_id = 'b', a value outside the table's
 * binding): then no request is to be sent.
 */
UsageValueSet *
usage_evaluate_params(const UsageEndpoint *ep, UsageOptions *opts,
					  UsageColumn *cols, const int *param_col,
					  List *conds, List *expr_states,
					  ExprContext *econtext, bool *empty)
{
	UsageValueSet *sets = palloc0(sizeof(UsageValueSet) * ep->nparams);
	bool	   *constrained = palloc0(sizeof(bool) * ep->nparams);
	ListCell   *lc;

	*empty = false;

	foreach(lc, conds)
	{
		UsageCond  *cond = (UsageCond *) lfirst(lc);
		const UsageParamDef *def = &ep->params[cond->param];
		UsageValueSet *set = &sets[cond->param];
		ExprState  *es = (ExprState *) list_nth(expr_states, cond->expr_index);
		Oid			typid = exprType((Node *) es->expr);
		UsageColumn *col = param_column(cols, param_col, cond->param);
		Datum		d;
		bool		isnull;
		UsageValue *vals;
		int			nvals;

		Assert(col != NULL);
		d = ExecEvalExpr(es, econtext, &isnull);
		if (isnull)
		{
			/* "col = NULL" and "col IN (NULL::text[])" are never true */
			*empty = true;
			continue;
		}
		if (def->kind == USAGE_KIND_DATE_RANGE)
		{
			apply_range_cond(set, cond, d, typid, empty);
			continue;
		}

		vals = cond_values(def, col, cond, d, typid, &nvals);
		if (!constrained[cond->param])
		{
			set->values = vals;
			set->nvalues = nvals;
			set->sent = true;
			constrained[cond->param] = true;
		}
		else
			intersect_values(set, vals, nvals);
		if (set->nvalues == 0)
			*empty = true;
	}

	/* bindings, date ranges, and what is not sent */
	for (int p = 0; p < ep->nparams; p++)
	{
		const UsageParamDef *def = &ep->params[p];
		UsageColumn *col = param_column(cols, param_col, p);
		const char *binding = usage_param_default(opts, def);

		if (def->kind == USAGE_KIND_DATE_RANGE)
			finish_date_range(ep, def, &sets[p], empty);
		else if (binding != NULL)
			apply_binding(&sets[p], def, col, binding, constrained[p], empty);
		else if (!constrained[p])
			not_sent(&sets[p], def, col);
	}

	return sets;
}
