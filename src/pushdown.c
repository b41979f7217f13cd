/*-------------------------------------------------------------------------
 *
 * pushdown.c
 *		  Which WHERE and join clauses become request parameters (plan
 *		  time; their evaluation at execution is params.c's).
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

bool
usage_is_datetime_type(Oid typid)
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
	if (ep->params[pidx].kind == USAGE_KIND_TIME_RANGE)
	{
		if (usage_is_datetime_type(col->typid) && usage_is_datetime_type(righttype))
			add_cond(pd, pidx, op, value, col->typid);
		return;
	}
	if (op != USAGE_OP_EQ && op != USAGE_OP_ANY)
		return;
	/* start_date = '2024-01-01'::date: the value as a timestamp */
	if (ep->params[pidx].kind == USAGE_KIND_TIME &&
		(col->typid == TIMESTAMPTZOID || col->typid == TIMESTAMPOID) &&
		usage_is_datetime_type(righttype))
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
			cx->ep->params[c->param].kind == USAGE_KIND_TIME_RANGE)
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
		if (def->kind != USAGE_KIND_TIME_RANGE)
			return true;
		if (cond->op == USAGE_OP_EQ || cond->op == USAGE_OP_ANY ||
			cond->op == USAGE_OP_GE || cond->op == USAGE_OP_GT)
			return true;
	}
	return usage_param_default(opts, def) != NULL;
}

