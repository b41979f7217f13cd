/*-------------------------------------------------------------------------
 *
 * params.c
 *		  The values of the request parameters, evaluated when a scan
 *		  starts: the pushed-down conditions (pushdown.c) folded into one
 *		  value set per parameter, with bindings, date ranges on UTC days,
 *		  and the values that cannot hold.
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

	if (def->kind == USAGE_KIND_EPOCH_MS && usage_is_datetime_type(typid) &&
		usage_is_datetime_type(col->typid))
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
