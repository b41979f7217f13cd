/*-------------------------------------------------------------------------
 *
 * explain.c
 *		  What EXPLAIN shows of a usage_fdw scan: the request template.
 *
 * The request line (method, path, and for GET the query string) and the
 * JSON body are shown with the values known at plan time; a value known
 * only at execution (a query parameter, a stable expression such as
 * current_date - 30, a join value, or one of several IN values) appears
 * as a placeholder {column}, explained under "Request Parameters" (braces,
 * so that it cannot be mistaken for a query parameter $n).  No secret is
 * part of any of it: credentials travel in a header only.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/timestamp.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

#include "usage_fdw.h"

#define MAX_LISTED_VALUES 5

/* The scan being explained, and what its explanation has found so far. */
typedef struct ExplainCtx
{
	const UsageEndpoint *ep;
	UsageOptions *opts;
	UsageColumn *cols;
	const int  *param_col;		/* per parameter: its column, or -1 */
	List	   *conds;
	List	   *exprs;
	StringInfoData legend;
	int			nplaceholders;
	List	   *placeholder_columns;	/* column of each placeholder so far */
	double		fanout;			/* -1: unknown */
	bool		empty_range;	/* a date range no day satisfies */
} ExplainCtx;

static char *
const_text(Oid typid, Datum d)
{
	Oid			outfunc;
	bool		isvarlena;

	getTypeOutputInfo(typid, &outfunc, &isvarlena);
	return OidOutputFunctionCall(outfunc, d);
}

static const char *
describe_expr(Node *e)
{
	if (IsA(e, Param))
	{
		Param	   *p = (Param *) e;

		if (p->paramkind == PARAM_EXTERN)
			return psprintf("query parameter $%d", p->paramid);
		if (p->paramid < 0)
			return "each key of the batch, at execution";
		return "value from a join or subquery, at execution";
	}
	return "expression evaluated at execution";
}

/*
 * A new placeholder {colname} for a value of colname known only at
 * execution ({colname#2} for its second value, and so on), explained in the
 * legend; set as out's verbatim text (when out is given).
 */
static char *
add_placeholder(ExplainCtx *cx, const char *colname, const char *what,
				UsageRenderValue *out)
{
	char	   *placeholder;
	int			nth = 1;
	ListCell   *lc;

	foreach(lc, cx->placeholder_columns)
	{
		if (strcmp((const char *) lfirst(lc), colname) == 0)
			nth++;
	}
	cx->placeholder_columns = lappend(cx->placeholder_columns, pstrdup(colname));
	cx->nplaceholders++;
	if (nth == 1)
		placeholder = psprintf("{%s}", colname);
	else
		placeholder = psprintf("{%s#%d}", colname, nth);
	if (cx->legend.len > 0)
		appendStringInfoString(&cx->legend, ", ");
	appendStringInfo(&cx->legend, "%s: %s", placeholder, what);
	if (out)
	{
		out->text = placeholder;
		out->verbatim = true;
	}
	return placeholder;
}

/* The name of parameter p's column, or its key when the table has none. */
static const char *
param_colname(ExplainCtx *cx, int p)
{
	const UsageParamDef *def = &cx->ep->params[p];

	if (cx->param_col[p] >= 0)
		return cx->cols[cx->param_col[p]].name;
	return def->key ? def->key : def->api_name;
}

/*
 * The request text of a known value, as the executor would send it (see
 * make_value in params.c), or NULL when the executor would refuse it (an
 * infinite point in time, one its format cannot stand for (usage_time_sendable),
 * a value of a boolean parameter that is not a boolean).
 */
static char *
known_value_text(const UsageParamDef *def, Oid coltype, Datum d, Oid typid,
				 const char *colname)
{
	if (def->kind == USAGE_KIND_TIME)
	{
		Oid			to = OidIsValid(coltype) ? coltype : typid;
		int64		ms;

		d = usage_coerce_point_in_time(d, typid, to);
		if ((to == DATEOID && DATE_NOT_FINITE(DatumGetDateADT(d))) ||
			((to == TIMESTAMPOID || to == TIMESTAMPTZOID) &&
			 TIMESTAMP_NOT_FINITE(DatumGetTimestamp(d))) ||
			!usage_time_sendable(def, d, to))
			return NULL;
		return usage_time_value_text(def, d, to, to, colname, &ms);
	}
	if (def->kind == USAGE_KIND_BOOLEAN)
	{
		bool		b;

		if (typid == BOOLOID)
			b = DatumGetBool(d);
		else if (!parse_bool(const_text(typid, d), &b))
			return NULL;
		return pstrdup(b ? "true" : "false");
	}
	return const_text(typid, d);
}

/*
 * IN (constants): the one request value when all values are the same, else
 * a placeholder listing them.  Multiplies the fan-out by their number.
 */
static void
in_list_display(ExplainCtx *cx, const UsageParamDef *def, UsageCond *cond,
				Const *c, const char *colname, UsageRenderValue *out)
{
	Oid			elemtype;
	Datum	   *elems;
	char	  **texts;
	int			distinct = usage_distinct_elements(c->constvalue, &elemtype,
												   &elems, &texts);
	int			shown = Min(distinct, MAX_LISTED_VALUES);
	StringInfoData what;

	initStringInfo(&what);
	for (int i = 0; i < shown; i++)
	{
		appendStringInfoString(&what, i ? ", " : "each of ");
		appendStringInfoString(&what, quote_literal_cstr(texts[i]));
	}
	if (distinct > shown)
		appendStringInfo(&what, " and %d more", distinct - shown);
	if (distinct == 0)
		appendStringInfoString(&what, "no value");
	if (cx->fanout >= 0)
		cx->fanout *= distinct;
	if (distinct == 1)
	{
		out->text = known_value_text(def, cond->coltype, elems[0], elemtype,
									 colname);
		if (out->text)
			return;
	}
	add_placeholder(cx, colname, what.data, out);
}

/* The one condition on parameter p, or NULL; *nconds: how many there are. */
static UsageCond *
only_cond(List *conds, int p, int *nconds)
{
	UsageCond  *only = NULL;
	ListCell   *lc;

	*nconds = 0;
	foreach(lc, conds)
	{
		UsageCond  *c = (UsageCond *) lfirst(lc);

		if (c->param == p)
		{
			only = c;
			(*nconds)++;
		}
	}
	return only;
}

/*
 * The display of one (non-range) parameter: a known value, a placeholder,
 * or nothing when not sent.  A bound parameter (a server or table option)
 * is sent with its binding's value whatever the conditions say (they can
 * only narrow it).
 */
static void
param_display(ExplainCtx *cx, int p, UsageRenderValue *out)
{
	const UsageParamDef *def = &cx->ep->params[p];
	const char *binding = usage_param_default(cx->opts, def);
	const char *colname = param_colname(cx, p);
	int			nconds;
	UsageCond  *only = only_cond(cx->conds, p, &nconds);
	Node	   *e;

	if (binding != NULL)
	{
		out->text = binding;
		if (def->kind == USAGE_KIND_BOOLEAN)
		{
			bool		b = false;

			(void) parse_bool(binding, &b);
			out->text = b ? "true" : "false";
		}
		return;
	}
	if (nconds == 0)
		return;
	if (nconds > 1)
	{
		/* several conditions on one parameter: known only at execution */
		cx->fanout = -1;
		add_placeholder(cx, colname, "several conditions, combined at execution", out);
		return;
	}

	e = (Node *) list_nth(cx->exprs, only->expr_index);
	if (IsA(e, Const) && !((Const *) e)->constisnull)
	{
		Const	   *c = (Const *) e;

		if (only->op == USAGE_OP_ANY)
		{
			in_list_display(cx, def, only, c, colname, out);
			return;
		}
		out->text = known_value_text(def, only->coltype, c->constvalue,
									 c->consttype, colname);
		if (out->text == NULL)
			add_placeholder(cx, colname,
							psprintf("%s, refused at execution",
									 quote_literal_cstr(const_text(c->consttype,
																   c->constvalue))),
							out);
		return;
	}
	if (only->op == USAGE_OP_ANY)
		cx->fanout = -1;
	add_placeholder(cx, colname, describe_expr(e), out);
}

/*
 * The display of a range: the bounds that constant conditions give, else
 * placeholders.
 */
static void
range_display(ExplainCtx *cx, int p, UsageRenderValue *out)
{
	const UsageParamDef *def = &cx->ep->params[p];
	char	   *from_text;
	char	   *to_text;
	bool		empty;
	int			nconds;

	(void) only_cond(cx->conds, p, &nconds);
	if (nconds == 0 && !def->required)
		return;
	if (usage_const_range(def, cx->conds, cx->exprs, p, &from_text, &to_text,
						  &empty))
	{
		if (empty)
			cx->empty_range = true;
		out->text = from_text;
		out->end_text = to_text;
		return;
	}
	add_placeholder(cx, param_colname(cx, p), "lower bound, at execution", out);
	out->end_text = add_placeholder(cx, param_colname(cx, p),
									def->required ?
									"upper bound (or now), at execution" :
									"upper bound, at execution", NULL);
}

/*
 * usage_value_source of EXPLAIN: a path parameter shows its binding, or
 * {name}; the others what is known at plan time.
 */
static void
explain_value(void *arg, int p, UsageRenderValue *out)
{
	ExplainCtx *cx = (ExplainCtx *) arg;
	const UsageParamDef *def = &cx->ep->params[p];

	if (def->place == USAGE_PLACE_PATH && def->key == NULL)
	{
		out->text = usage_param_default(cx->opts, def);
		if (out->text == NULL)
		{
			out->text = psprintf("{%s}", def->api_name);
			out->verbatim = true;
		}
	}
	else if (def->kind == USAGE_KIND_TIME_RANGE)
		range_display(cx, p, out);
	else
		param_display(cx, p, out);
}

/*
 * The request template of a scan, rendered by request.c as the executor's
 * requests are.  Returns the request line; *body_out is the JSON body (or
 * NULL), *legend_out explains the placeholders (or NULL), *fanout is the
 * number of requests when known at plan time, else -1.
 */
char *
usage_describe_request(const UsageEndpoint *ep, UsageOptions *opts,
					   UsageColumn *cols, const int *param_col,
					   List *conds, List *exprs, int *fanout,
					   char **body_out, char **legend_out)
{
	ExplainCtx	cx;
	StringInfoData line;
	StringInfoData body;

	memset(&cx, 0, sizeof(cx));
	cx.ep = ep;
	cx.opts = opts;
	cx.cols = cols;
	cx.param_col = param_col;
	cx.conds = conds;
	cx.exprs = exprs;
	initStringInfo(&cx.legend);
	cx.fanout = 1;
	initStringInfo(&line);
	initStringInfo(&body);

	appendStringInfo(&line, "%s ", ep->method);
	usage_render_request(ep, opts, explain_value, &cx, &line, &body);

	if (cx.empty_range)
		cx.fanout = 0;
	*fanout = cx.fanout < 0 ? -1 : (int) Min(cx.fanout, (double) INT_MAX);
	*body_out = strcmp(ep->method, "POST") == 0 ? body.data : NULL;
	*legend_out = cx.legend.len > 0 ? cx.legend.data : NULL;
	return line.data;
}
