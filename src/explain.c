/*-------------------------------------------------------------------------
 *
 * explain.c
 *		  What EXPLAIN shows of a usage_fdw scan: the request template.
 *
 * The request line (method, path, and for GET the query string) and the
 * JSON body are shown with the values known at plan time; a value known
 * only at execution (a query parameter, a stable expression such as
 * current_date - 30, a join value, or one of several IN values) appears
 * as a placeholder $n, explained under "Request Parameters".  No secret is
 * part of any of it: credentials travel in a header only.
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

typedef struct ExplainCtx
{
	StringInfoData legend;
	int			nplaceholders;
	double		fanout;			/* -1: unknown */
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

static char *
add_placeholder(ExplainCtx *cx, const char *colname, const char *what)
{
	cx->nplaceholders++;
	if (cx->legend.len > 0)
		appendStringInfoString(&cx->legend, ", ");
	appendStringInfo(&cx->legend, "$%d = %s: %s", cx->nplaceholders, colname, what);
	return psprintf("$%d", cx->nplaceholders);
}

/* How a single known value of a parameter is written in the request. */
static char *
render_value(const UsageParamDef *def, const char *text, bool for_query)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (for_query)
	{
		usage_append_url_encoded(&buf, text);
		return buf.data;
	}
	switch (def->kind)
	{
		case USAGE_KIND_BOOLEAN:
		case USAGE_KIND_EPOCH_MS:
			appendStringInfoString(&buf, text);
			break;
		case USAGE_KIND_STRING_LIST:
			appendStringInfoChar(&buf, '[');
			escape_json(&buf, text);
			appendStringInfoChar(&buf, ']');
			break;
		default:
			escape_json(&buf, text);
			break;
	}
	return buf.data;
}

/*
 * The request text of a known value, as the executor would send it (see
 * make_value in pushdown.c), or NULL when the executor would refuse it (an
 * infinite point in time, a value of a boolean parameter that is not a
 * boolean).
 */
static char *
known_value_text(const UsageParamDef *def, Oid coltype, Datum d, Oid typid,
				 const char *colname)
{
	if (def->kind == USAGE_KIND_EPOCH_MS)
	{
		Oid			to = OidIsValid(coltype) ? coltype : typid;

		d = usage_coerce_point_in_time(d, typid, to);
		if ((to == DATEOID && DATE_NOT_FINITE(DatumGetDateADT(d))) ||
			((to == TIMESTAMPOID || to == TIMESTAMPTZOID) &&
			 TIMESTAMP_NOT_FINITE(DatumGetTimestamp(d))))
			return NULL;
		return psprintf(INT64_FORMAT, usage_datum_to_epoch_ms(d, to, colname));
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
static char *
in_list_display(ExplainCtx *cx, const UsageParamDef *def, UsageCond *cond,
				Const *c, const char *colname, bool for_query)
{
	Oid			elemtype;
	Datum	   *elems;
	bool	   *nulls;
	int			n = usage_array_elements(c->constvalue, &elemtype, &elems, &nulls);
	int			shown = 0,
				distinct = 0;
	StringInfoData what;
	char	  **texts = palloc(sizeof(char *) * Max(n, 1));
	Datum		first = (Datum) 0;

	initStringInfo(&what);
	for (int i = 0; i < n; i++)
	{
		bool		dup = false;

		if (nulls[i])
			continue;
		texts[distinct] = const_text(elemtype, elems[i]);
		for (int j = 0; j < distinct && !dup; j++)
			dup = strcmp(texts[j], texts[distinct]) == 0;
		if (dup)
			continue;
		if (distinct == 0)
			first = elems[i];
		if (shown < MAX_LISTED_VALUES)
		{
			appendStringInfoString(&what, shown ? ", " : "each of ");
			appendStringInfoString(&what, quote_literal_cstr(texts[distinct]));
			shown++;
		}
		distinct++;
	}
	if (distinct > shown)
		appendStringInfo(&what, " and %d more", distinct - shown);
	if (distinct == 0)
		appendStringInfoString(&what, "no value");
	if (cx->fanout >= 0)
		cx->fanout *= distinct;
	if (distinct == 1)
	{
		char	   *text = known_value_text(def, cond->coltype, first, elemtype, colname);

		if (text)
			return render_value(def, text, for_query);
	}
	return add_placeholder(cx, colname, what.data);
}

/*
 * The display form of one (non-range) parameter, or NULL when not sent.
 * A bound parameter (a server or table option) is sent with its binding's
 * value whatever the conditions say (they can only narrow it).
 */
static char *
param_display(ExplainCtx *cx, const UsageEndpoint *ep, UsageOptions *opts,
			  List *conds, List *exprs, int p, const char *colname,
			  bool for_query)
{
	const UsageParamDef *def = &ep->params[p];
	const char *binding = usage_param_default(opts, def);
	UsageCond  *only = NULL;
	int			nconds = 0;
	ListCell   *lc;
	Node	   *e;

	if (binding != NULL)
	{
		if (def->kind == USAGE_KIND_BOOLEAN)
		{
			bool		b = false;

			(void) parse_bool(binding, &b);
			binding = b ? "true" : "false";
		}
		return render_value(def, binding, for_query);
	}

	foreach(lc, conds)
	{
		UsageCond  *c = (UsageCond *) lfirst(lc);

		if (c->param == p)
		{
			only = c;
			nconds++;
		}
	}
	if (nconds == 0)
		return NULL;
	if (nconds > 1)
	{
		/* several conditions on one parameter: known only at execution */
		cx->fanout = -1;
		return add_placeholder(cx, colname, "several conditions, combined at execution");
	}

	e = (Node *) list_nth(exprs, only->expr_index);
	if (IsA(e, Const) && !((Const *) e)->constisnull)
	{
		Const	   *c = (Const *) e;
		char	   *text;

		if (only->op == USAGE_OP_ANY)
			return in_list_display(cx, def, only, c, colname, for_query);
		text = known_value_text(def, only->coltype, c->constvalue, c->consttype,
								colname);
		if (text)
			return render_value(def, text, for_query);
		return add_placeholder(cx, colname,
							   psprintf("%s, refused at execution",
										quote_literal_cstr(const_text(c->consttype,
																	  c->constvalue))));
	}
	if (only->op == USAGE_OP_ANY)
		cx->fanout = -1;
	return add_placeholder(cx, colname, describe_expr(e));
}

/* The name of parameter p's column, or its key when the table has none. */
static const char *
param_colname(UsageColumn *cols, const int *param_col, const UsageParamDef *def,
			  int p)
{
	if (param_col[p] >= 0)
		return cols[param_col[p]].name;
	return def->key ? def->key : def->api_name;
}

/*
 * The request template of a scan.  Returns the request line; *body_out is
 * the JSON body (or NULL), *legend_out explains the placeholders (or NULL),
 * *fanout is the number of requests when known at plan time, else -1.
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
	bool		first_query = true;
	bool		any_body = false;
	bool		empty_range = false;

	memset(&cx, 0, sizeof(cx));
	initStringInfo(&cx.legend);
	cx.fanout = 1;
	initStringInfo(&line);
	initStringInfo(&body);

	appendStringInfo(&line, "%s ", ep->method);
	for (const char *p = ep->path; *p; p++)
	{
		if (*p == '{')
		{
			const char *end = strchr(p, '}');

			for (int i = 0; i < ep->nparams; i++)
			{
				const UsageParamDef *def = &ep->params[i];

				if (def->place == USAGE_PLACE_PATH &&
					strncmp(def->api_name, p + 1, end - p - 1) == 0)
				{
					const char *v = usage_param_default(opts, def);

					if (v)
						usage_append_url_encoded(&line, v);
					else
						appendStringInfo(&line, "{%s}", def->api_name);
				}
			}
			p = end;
			continue;
		}
		appendStringInfoChar(&line, *p);
	}

	appendStringInfoChar(&body, '{');
	for (int i = 0; i < ep->nparams; i++)
	{
		const UsageParamDef *def = &ep->params[i];
		char	   *disp;

		if (def->place == USAGE_PLACE_PATH)
			continue;

		if (def->kind == USAGE_KIND_DATE_RANGE)
		{
			int64		start_ms,
						end_ms;
			bool		has_end,
						empty;
			char	   *start_s,
					   *end_s;

			if (usage_const_date_range(conds, exprs, i, &start_ms, &end_ms,
									   &has_end, &empty))
			{
				if (empty)
					empty_range = true;
				start_s = psprintf(INT64_FORMAT, start_ms);
				end_s = has_end ? psprintf(INT64_FORMAT, end_ms) : pstrdup("now");
			}
			else
			{
				start_s = add_placeholder(&cx, param_colname(cols, param_col, def, i),
										  "lower bound, at execution");
				end_s = add_placeholder(&cx, param_colname(cols, param_col, def, i),
										"upper bound (or now), at execution");
			}
			appendStringInfo(&body, "%s\"%s\":%s,\"%s\":%s", any_body ? "," : "",
							 def->api_name, start_s, def->api_name_end, end_s);
			any_body = true;
			continue;
		}

		disp = param_display(&cx, ep, opts, conds, exprs, i,
							 param_colname(cols, param_col, def, i),
							 def->place == USAGE_PLACE_QUERY);
		if (disp == NULL)
			continue;
		if (def->place == USAGE_PLACE_QUERY)
		{
			appendStringInfo(&line, "%c%s=%s", first_query ? '?' : '&',
							 def->api_name, disp);
			first_query = false;
		}
		else
		{
			appendStringInfoString(&body, any_body ? "," : "");
			escape_json(&body, def->api_name);
			appendStringInfo(&body, ":%s", disp);
			any_body = true;
		}
	}
	appendStringInfoChar(&body, '}');
	if (ep->paging == USAGE_PAGING_NEXTLINK && ep->page_size_param)
		appendStringInfo(&line, "%c%s=%d", first_query ? '?' : '&',
						 ep->page_size_param, opts->page_size);

	if (empty_range)
		cx.fanout = 0;
	*fanout = cx.fanout < 0 ? -1 : (int) Min(cx.fanout, (double) INT_MAX);
	*body_out = strcmp(ep->method, "POST") == 0 ? body.data : NULL;
	*legend_out = cx.legend.len > 0 ? cx.legend.data : NULL;
	return line.data;
}
