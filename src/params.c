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

#include <ctype.h>

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
 * usage_format_time
 *		A point in time, microseconds since 1970-01-01 UTC, in a format:
 *		unix milliseconds (rounded down), 2024-01-31T00:00:00Z (with
 *		milliseconds when there are any), or 2024-01-31.
 */
char *
usage_format_time(int64 usecs, UsageTimeFormat format)
{
	int64		ms = usecs / 1000 - (usecs % 1000 < 0 ? 1 : 0);
	Timestamp	ts = usecs - (int64) UNIX_TO_PG_DAYS * USECS_PER_DAY;
	struct pg_tm tm;
	fsec_t		fsec;

	if (format == USAGE_TIME_EPOCH_MS)
		return psprintf(INT64_FORMAT, ms);
	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	if (format == USAGE_TIME_DATE)
		return psprintf("%04d-%02d-%02d", tm.tm_year, tm.tm_mon, tm.tm_mday);
	if (fsec / 1000 != 0)
		return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year,
						tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
						tm.tm_sec, (int) (fsec / 1000));
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year, tm.tm_mon,
					tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * usage_time_value_text
 *		The request text of a point-in-time parameter's value d (of type
 *		typid, compared with a column of type coltype), in the parameter's
 *		format; *ms gets it as unix milliseconds.  The one conversion that
 *		the executor's requests and EXPLAIN share.
 */
char *
usage_time_value_text(const UsageParamDef *def, Datum d, Oid typid,
					  Oid coltype, const char *colname, int64 *ms)
{
	if (usage_is_datetime_type(typid) && usage_is_datetime_type(coltype))
	{
		d = usage_coerce_point_in_time(d, typid, coltype);
		typid = coltype;
	}
	*ms = usage_datum_to_epoch_ms(d, typid, colname);
	return usage_format_time(*ms * 1000, def->format);
}

/* x rounded down to a multiple of unit */
static int64
floor_to(int64 x, int64 unit)
{
	int64		r = x % unit;

	return r < 0 ? x - r - unit : x - r;
}

/*
 * usage_time_sendable
 *		Whether the request form of a point in time d (of type typid) stands
 *		for it without doubt.  iso8601 and epoch_ms carry whole milliseconds,
 *		date whole days (of UTC for a timestamptz); a date is always exact.
 *
 * An echo column shows the value itself, so its value must be exact.  A
 * response column's rows are checked by PostgreSQL, so a request for the
 * value's day is enough, with one exception: a timestamptz that is
 * midnight in the session's time zone, on a date other than its UTC one
 * (east of UTC).  A response that gives dates reads them as the session's
 * midnights, so its matching rows are of the local date; one that gives
 * instants has them in the UTC date; a request for one misses the other.
 */
bool
usage_time_sendable(const UsageParamDef *def, Datum d, Oid typid)
{
	Timestamp	ts;
	Timestamp	local;

	if (typid != TIMESTAMPOID && typid != TIMESTAMPTZOID)
		return true;
	ts = DatumGetTimestamp(d);
	if (TIMESTAMP_NOT_FINITE(ts))
		return true;
	if (def->echo)
		return ts % (def->format == USAGE_TIME_DATE ? USECS_PER_DAY : 1000) == 0;
	if (def->format != USAGE_TIME_DATE || typid != TIMESTAMPTZOID ||
		ts % USECS_PER_DAY == 0)
		return true;
	local = DatumGetTimestamp(DirectFunctionCall1(timestamptz_timestamp, d));
	return local % USECS_PER_DAY != 0 ||
		floor_to(local, USECS_PER_DAY) == floor_to(ts, USECS_PER_DAY);
}

/*
 * Refuse a point in time whose request form does not stand for it (see
 * usage_time_sendable): sent rounded, the rows of an echo column would
 * show a time they are not of (a day off, in the date format); a response
 * column could miss the rows of the session's date.
 */
static void
check_time_sendable(const UsageParamDef *def, UsageColumn *col, Datum d,
					Oid typid, const char *sent)
{
	Oid			outfunc;
	bool		isvarlena;

	if (usage_time_sendable(def, d, typid))
		return;
	getTypeOutputInfo(typid, &outfunc, &isvarlena);
	if (!def->echo)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value \"%s\" of column \"%s\" cannot be sent as one date",
						OidOutputFunctionCall(outfunc, d), col->name),
				 errdetail("The API takes parameter \"%s\" as a date. The value is midnight in the session's time zone, on another date than in UTC: rows whose dates match it are of the session's date, rows whose times match it are of %s (UTC), and a request asks for one date.",
						   def->api_name, sent),
				 errhint("Declare the column as date, or query in a session whose time zone is UTC.")));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("value \"%s\" of column \"%s\" cannot be sent exactly",
					OidOutputFunctionCall(outfunc, d), col->name),
			 def->format == USAGE_TIME_DATE ?
			 errdetail("The API takes parameter \"%s\" as a date: the request would be for %s, and every row would show a time it is not of.",
					   def->api_name, sent) :
			 errdetail("The API takes parameter \"%s\" in whole milliseconds: the request would be for %s, and every row would show a time it is not of.",
					   def->api_name, sent),
			 def->format == USAGE_TIME_DATE ?
			 errhint("Compare the column with a midnight (of UTC for a timestamptz, such as '2024-01-31 00:00+00'), or declare it as date.") :
			 errhint("Round the value to milliseconds, for example with date_trunc('milliseconds', now()).")));
}

/*
 * Refuse a value of a numeric parameter that a JSON body cannot carry as a
 * number (NaN, Infinity).
 */
static void
check_json_number(const UsageParamDef *def, const char *text,
				  const char *colname)
{
	const char *p = text;

	if (def->place != USAGE_PLACE_BODY)
		return;
	if (*p == '-')
		p++;
	if (isdigit((unsigned char) *p))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("value \"%s\" of column \"%s\" cannot be sent as a JSON number",
					text, colname)));
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

	if (def->kind == USAGE_KIND_TIME && usage_is_datetime_type(typid) &&
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
		case USAGE_KIND_TIME:
			v->text = usage_time_value_text(def, d, typid, col->typid,
											col->name, &v->num);
			check_time_sendable(def, col, d, typid, v->text);
			break;
		default:
			getTypeOutputInfo(typid, &outfunc, &isvarlena);
			v->text = OidOutputFunctionCall(outfunc, d);
			if (def->kind == USAGE_KIND_NUMBER)
				check_json_number(def, v->text, col->name);
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

/* Narrow a range to [lo, hi] (either side optional), in its units. */
static void
narrow_range(UsageValueSet *set, bool has_lo, int64 lo, bool has_hi, int64 hi)
{
	if (has_lo && (!set->has_low || lo > set->low))
	{
		set->low = lo;
		set->has_low = true;
	}
	if (has_hi && (!set->has_high || hi < set->high))
	{
		set->high = hi;
		set->has_high = true;
	}
}

/*
 * "col op infinity": true when nothing can satisfy it (col > infinity, col =
 * -infinity, ...); otherwise it is no bound at all.
 */
static bool
infinite_bound_excludes_all(UsageCondOp op, int sign)
{
	return ((op == USAGE_OP_GE || op == USAGE_OP_GT) && sign > 0) ||
		((op == USAGE_OP_LE || op == USAGE_OP_LT) && sign < 0) ||
		op == USAGE_OP_EQ;
}

/*
 * Narrow the days of a range on a date column by one bound "col op value":
 * the days d whose start (in the comparison's frame, see bound_day)
 * satisfies the comparison.
 */
static void
apply_day_bound(UsageValueSet *set, UsageCondOp op, Datum d, Oid typid,
				Oid coltype, bool *empty)
{
	int64		day;
	bool		exact;
	int			sign = 0;

	if (!bound_day(d, typid, coltype, &day, &exact, &sign))
	{
		*empty = *empty || infinite_bound_excludes_all(op, sign);
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
 * A bound on a timestamp or timestamptz column as microseconds since
 * 1970-01-01, in the column's frame: the instant for timestamptz, the
 * wall-clock time (which the API's UTC values fill) for timestamp.
 * *margin is how far the bound may be off: a timestamptz compared with a
 * timestamp column is compared in the session's time zone, which a
 * daylight-saving change may shift by hours, so a day's margin keeps the
 * request a superset.  False for an infinite bound (*sign tells which).
 */
static bool
bound_usecs(Datum d, Oid typid, Oid coltype, int64 *usecs, int64 *margin,
			int *sign)
{
	Timestamp	ts;

	*margin = 0;
	if (coltype == TIMESTAMPOID && typid == TIMESTAMPTZOID)
	{
		if (TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(d)))
			ts = DatumGetTimestampTz(d);
		else
			ts = DatumGetTimestamp(DirectFunctionCall1(timestamptz_timestamp, d));
		*margin = USECS_PER_DAY;
	}
	else
		ts = DatumGetTimestamp(usage_coerce_point_in_time(d, typid, coltype));
	if (TIMESTAMP_NOT_FINITE(ts))
	{
		*sign = TIMESTAMP_IS_NOBEGIN(ts) ? -1 : 1;
		return false;
	}
	*usecs = ts + (int64) UNIX_TO_PG_DAYS * USECS_PER_DAY;
	return true;
}

/*
 * Narrow a range on a timestamp column by one bound "col op value": a
 * strict bound is taken as the inclusive one (a superset).
 */
static void
apply_usecs_bound(UsageValueSet *set, UsageCondOp op, Datum d, Oid typid,
				  Oid coltype, bool *empty)
{
	int64		us;
	int64		margin;
	int			sign = 0;

	if (!bound_usecs(d, typid, coltype, &us, &margin, &sign))
	{
		*empty = *empty || infinite_bound_excludes_all(op, sign);
		return;
	}
	if (op == USAGE_OP_EQ || op == USAGE_OP_GE || op == USAGE_OP_GT)
		narrow_range(set, true, us - margin, false, 0);
	if (op == USAGE_OP_EQ || op == USAGE_OP_LE || op == USAGE_OP_LT)
		narrow_range(set, false, 0, true, us + margin);
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

/* col IN (...) on a range: from the least to the greatest value */
static void
apply_range_any(UsageValueSet *set, Datum d, Oid coltype, bool days,
				bool *empty)
{
	Oid			elemtype;
	Datum	   *elems;
	bool	   *nulls;
	int			n = array_elements(d, &elemtype, &elems, &nulls);
	UsageValueSet span;

	memset(&span, 0, sizeof(span));
	for (int i = 0; i < n; i++)
	{
		UsageValueSet one;
		bool		none = false;

		if (nulls[i])
			continue;
		memset(&one, 0, sizeof(one));
		if (days)
			apply_day_bound(&one, USAGE_OP_EQ, elems[i], elemtype, coltype, &none);
		else
			apply_usecs_bound(&one, USAGE_OP_EQ, elems[i], elemtype, coltype, &none);
		if (none)
			continue;
		if (!span.has_low || one.low < span.low)
			span.low = one.low;
		if (!span.has_high || one.high > span.high)
			span.high = one.high;
		span.has_low = span.has_high = true;
	}
	if (!span.has_low)
	{
		*empty = true;
		return;
	}
	narrow_range(set, true, span.low, true, span.high);
}

/*
 * One condition on a range parameter: a range of days (see whole_days), or
 * of microseconds.
 */
static void
apply_range_cond(const UsageParamDef *def, UsageValueSet *set,
				 UsageCond *cond, Datum d, Oid typid, bool *empty)
{
	if (cond->op == USAGE_OP_ANY)
		apply_range_any(set, d, cond->coltype, def->whole_days, empty);
	else if (def->whole_days)
		apply_day_bound(set, cond->op, d, typid, cond->coltype, empty);
	else
		apply_usecs_bound(set, cond->op, d, typid, cond->coltype, empty);
}

/* The unit of a format, in microseconds. */
static int64
format_unit(UsageTimeFormat format)
{
	switch (format)
	{
		case USAGE_TIME_EPOCH_MS:
			return 1000;
		case USAGE_TIME_ISO8601:
			return USECS_PER_SEC;
		case USAGE_TIME_DATE:
			return USECS_PER_DAY;
	}
	return 1;
}

/*
 * What a range sends: the lower bound rounded down to a whole unit of the
 * format, the upper bound widened to the next whole unit (the start of the
 * next day on a date column), so that the request covers the range whether
 * the API reads its bounds as inclusive or not.  An open upper bound of a
 * required range is now ("now" for EXPLAIN); one that is not required is
 * not sent.  Sets *empty when the range holds nothing.
 */
static void
range_texts(const UsageParamDef *def, UsageValueSet *set, bool for_explain,
			bool *empty)
{
	int64		unit = format_unit(def->format);
	bool		days = def->whole_days;
	int64		from = 0;
	int64		to;

	set->from_text = set->to_text = NULL;
	if (set->has_low && set->has_high && set->low > set->high)
		*empty = true;
	if (set->has_low)
	{
		from = floor_to(days ? set->low * USECS_PER_DAY : set->low, unit);
		set->from_text = usage_format_time(from, def->format);
	}
	if (set->has_high)
		to = days ? (set->high + 1) * USECS_PER_DAY :
			floor_to(set->high, unit) + unit;
	else if (def->required)
		to = floor_to(GetCurrentTransactionStartTimestamp() +
					  (int64) UNIX_TO_PG_DAYS * USECS_PER_DAY, unit) + unit;
	else
		return;
	if (set->has_low && from >= to)
		*empty = true;
	set->to_text = (for_explain && !set->has_high) ? pstrdup("now") :
		usage_format_time(to, def->format);
}

/*
 * For EXPLAIN: what a range parameter sends, when constant conditions give
 * it.  Returns false when some condition on it is not a constant.
 */
bool
usage_const_range(const UsageParamDef *def, List *conds, List *exprs,
				  int param, char **from_text, char **to_text, bool *empty)
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
		apply_range_cond(def, &set, cond, c->constvalue, c->consttype, empty);
	}
	if (def->required && !set.has_low)
		*empty = true;
	range_texts(def, &set, true, empty);
	*from_text = set.from_text;
	*to_text = set.to_text;
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
	if (def->kind == USAGE_KIND_TIME)
	{
		*canonical = v->text = usage_time_value_text(def, v->echo, col->typid,
													 col->typid, col->name,
													 &v->num);
		check_time_sendable(def, col, v->echo, col->typid, v->text);
	}
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
 * Finish a range: check it, and compute what is sent.
 */
static void
finish_range(const UsageEndpoint *ep, const UsageParamDef *def,
			 UsageValueSet *set, UsageColumn *col, bool *empty)
{
	if (def->required && !set->has_low && !*empty)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("endpoint \"%s\" needs a lower bound on \"%s\", and the query's bound has no finite value",
						ep->name, col ? col->name : def->key),
				 errhint("Add a WHERE clause such as: %s.", ep->example_where)));
	set->sent = true;
	set->nvalues = 1;
	range_texts(def, set, false, empty);
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
		if (def->kind == USAGE_KIND_TIME_RANGE)
		{
			apply_range_cond(def, set, cond, d, typid, empty);
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

		if (def->kind == USAGE_KIND_TIME_RANGE)
			finish_range(ep, def, &sets[p], col, empty);
		else if (binding != NULL)
			apply_binding(&sets[p], def, col, binding, constrained[p], empty);
		else if (!constrained[p])
			not_sent(&sets[p], def, col);
	}

	return sets;
}
