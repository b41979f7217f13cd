/*-------------------------------------------------------------------------
 *
 * declare.c
 *		  Declared endpoints: a foreign table that names its own endpoint
 *		  (table option path instead of endpoint) is turned into the same
 *		  endpoint description as the built-in entries of the catalogue.
 *
 * The table options give the method, the path template, the JSON pointers
 * to the rows and to the next page's link, and the paging; the column
 * options give the parameters: param (a parameter a clause on the column
 * supplies), required, param_from/param_to (range clauses on a date or
 * timestamp column) and param_format (how a point in time is written).
 * Everything downstream (pushdown, fan-out, bindings, batched joins,
 * paging, EXPLAIN) reads the resulting UsageEndpoint and cannot tell a
 * declaration from a built-in entry.
 *
 * Each option's value is checked here, once: by the option validator at
 * CREATE/ALTER time, and again (with the checks that need the whole table,
 * such as a {name} in the path without a parameter column) whenever the
 * description is built, which the DDL event trigger does at CREATE/ALTER.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "usage_fdw.h"

/* a declared endpoint's estimate of the rows of one call */
#define DECLARED_ROWS_PER_CALL 1000.0

/* The column options of one attribute that declare a parameter. */
typedef struct ColumnDecl
{
	const char *colname;
	Oid			typid;
	bool		has_json_key;
	const char *param;
	const char *param_from;
	const char *param_to;
	const char *format;
	bool		required;
	bool		has_required;
} ColumnDecl;

/* Everything a declaration is built from, and what it has built so far. */
typedef struct DeclBuild
{
	UsageEndpoint *ep;
	UsageParamDef *params;
	int			nparams;
	UsageProvider provider;
	const char *table_name;
	List	   *table_options;
} DeclBuild;

/* An option of a declaration with a bad value. */
USAGE_NORETURN static void
bad_value(const char *option, const char *value, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"", option, value),
			 errhint("%s", hint)));
}

/* ----------------------------------------------------------------
 *		JSON pointers (RFC 6901)
 * ----------------------------------------------------------------
 */

/*
 * Is pointer a JSON pointer: empty, or "/"-separated reference tokens in
 * which "~" is only ever followed by "0" or "1"?
 */
bool
usage_json_pointer_valid(const char *pointer)
{
	if (pointer[0] == '\0')
		return true;
	if (pointer[0] != '/')
		return false;
	for (const char *p = pointer; *p; p++)
	{
		if (*p == '~' && p[1] != '0' && p[1] != '1')
			return false;
	}
	return true;
}

/*
 * The reference tokens of a valid JSON pointer, unescaped ("~1" is "/",
 * "~0" is "~"), and their number.
 */
char	  **
usage_json_pointer_split(const char *pointer, int *ntokens)
{
	int			n = 0;
	char	  **tokens;
	const char *p;

	for (p = pointer; *p; p++)
		n += (*p == '/');
	tokens = palloc(sizeof(char *) * Max(n, 1));
	*ntokens = n;
	p = pointer;
	for (int i = 0; i < n; i++)
	{
		StringInfoData tok;

		initStringInfo(&tok);
		for (p++; *p && *p != '/'; p++)
		{
			if (*p == '~' && (p[1] == '0' || p[1] == '1'))
			{
				appendStringInfoChar(&tok, p[1] == '0' ? '~' : '/');
				p++;
			}
			else
				appendStringInfoChar(&tok, *p);
		}
		tokens[i] = tok.data;
	}
	return tokens;
}

/* ----------------------------------------------------------------
 *		Option values, each checked in one place
 * ----------------------------------------------------------------
 */

/*
 * A path template: a relative path below base_url, starting with one "/",
 * without a scheme, a host, a query or a fragment, whose {name}
 * placeholders are closed and named.
 */
static void
check_path(const char *path)
{
	const char *hint = "Give a path below base_url that starts with one \"/\", such as '/smp/powerplatform/connections'; {name} is filled from the parameter name.";

	if (path[0] != '/' || path[1] == '/' || path[1] == '\\')
		bad_value("path", path, hint);
	for (const char *p = path; *p; p++)
	{
		if (*p == '{')
		{
			const char *end = strchr(p, '}');

			if (end == NULL || end == p + 1 ||
				strcspn(p + 1, "{/") < (size_t) (end - p - 1))
				bad_value("path", path, "Close each {name} with }, and give it a name.");
			p = end;
		}
		else if (*p == '}' || *p == '?' || *p == '#' || *p == '\\' ||
				 (unsigned char) *p <= ' ' || *p == 0x7f)
			bad_value("path", path, hint);
	}
}

/* the format named by a param_format value */
static bool
parse_format(const char *value, UsageTimeFormat *format)
{
	if (strcmp(value, "iso8601") == 0)
		*format = USAGE_TIME_ISO8601;
	else if (strcmp(value, "date") == 0)
		*format = USAGE_TIME_DATE;
	else if (strcmp(value, "epoch_ms") == 0)
		*format = USAGE_TIME_EPOCH_MS;
	else
		return false;
	return true;
}

/* A request parameter's name: printable, without characters that split. */
static void
check_param_name(const char *option, const char *value)
{
	if (value[0] == '\0' || strpbrk(value, "{}/?#&= \t\r\n") != NULL)
		bad_value(option, value,
				  "Give the parameter's name in the request, such as 'flowId'.");
}

/*
 * usage_check_declaration_option
 *		Check the value of one table option of a declaration.
 */
void
usage_check_declaration_option(DefElem *d)
{
	const char *name = d->defname;
	char	   *value = defGetString(d);

	if (strcmp(name, "path") == 0)
		check_path(value);
	else if (strcmp(name, "method") == 0)
	{
		if (strcmp(value, "GET") != 0 && strcmp(value, "POST") != 0)
			bad_value(name, value, "Valid methods are GET and POST.");
	}
	else if (strcmp(name, "rows") == 0)
	{
		if (!usage_json_pointer_valid(value))
			bad_value(name, value,
					  "Give a JSON pointer (RFC 6901) such as '/items', or '' for the whole response.");
	}
	else if (strcmp(name, "next_link") == 0)
	{
		if (!usage_json_pointer_valid(value) || value[0] == '\0')
			bad_value(name, value,
					  "Give a JSON pointer (RFC 6901) to the next page's link, such as '/nextLink'.");
	}
	else if (strcmp(name, "paging") == 0)
	{
		if (strcmp(value, "next_link") != 0 && strcmp(value, "none") != 0)
			bad_value(name, value, "Valid values are next_link and none.");
	}
	else if (strcmp(name, "page_size_param") == 0)
	{
		if (value[0] != '\0')
			check_param_name(name, value);
	}
}

/*
 * usage_check_declaration_column_option
 *		Check the value of one column option of a declaration.
 */
void
usage_check_declaration_column_option(DefElem *d)
{
	const char *name = d->defname;
	char	   *value = defGetString(d);
	UsageTimeFormat format;
	bool		b;

	if (strcmp(name, "param") == 0 || strcmp(name, "param_from") == 0 ||
		strcmp(name, "param_to") == 0)
		check_param_name(name, value);
	else if (strcmp(name, "required") == 0)
	{
		if (!parse_bool(value, &b))
			bad_value(name, value, "Valid values are true and false.");
	}
	else if (strcmp(name, "param_format") == 0)
	{
		if (!parse_format(value, &format))
			bad_value(name, value, "Valid formats are iso8601, date and epoch_ms.");
	}
}

/* ----------------------------------------------------------------
 *		Building the description
 * ----------------------------------------------------------------
 */

/* The value of a table option, or dflt. */
static const char *
table_option(DeclBuild *b, const char *name, const char *dflt)
{
	ListCell   *lc;

	foreach(lc, b->table_options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, name) == 0)
		{
			usage_check_declaration_option(d);
			return defGetString(d);
		}
	}
	return dflt;
}

/* Does the path template hold {name}? */
static bool
path_has(const char *path, const char *name)
{
	char	   *placeholder = psprintf("{%s}", name);

	return strstr(path, placeholder) != NULL;
}

/* Read the declaration options of one column into *cd. */
static void
read_column(Oid relid, Form_pg_attribute att, ColumnDecl *cd)
{
	ListCell   *lc;

	memset(cd, 0, sizeof(ColumnDecl));
	cd->colname = pstrdup(NameStr(att->attname));
	cd->typid = att->atttypid;
	(void) usage_column_json_key(relid, att->attnum, &cd->has_json_key);
	foreach(lc, GetForeignColumnOptions(relid, att->attnum))
	{
		DefElem    *d = (DefElem *) lfirst(lc);
		char	   *v = defGetString(d);

		usage_check_declaration_column_option(d);
		if (strcmp(d->defname, "param") == 0)
			cd->param = v;
		else if (strcmp(d->defname, "param_from") == 0)
			cd->param_from = v;
		else if (strcmp(d->defname, "param_to") == 0)
			cd->param_to = v;
		else if (strcmp(d->defname, "param_format") == 0)
			cd->format = v;
		else if (strcmp(d->defname, "required") == 0)
		{
			(void) parse_bool(v, &cd->required);
			cd->has_required = true;
		}
	}
}

/* A column option that its column's other options or type rule out. */
USAGE_NORETURN static void
column_error(DeclBuild *b, ColumnDecl *cd, const char *msg, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("column \"%s\" of foreign table %s: %s",
					cd->colname, b->table_name, msg),
			 errhint("%s", hint)));
}

/* The kind of a point parameter on a column of type typid. */
static UsageParamKind
point_kind(Oid typid)
{
	switch (typid)
	{
		case BOOLOID:
			return USAGE_KIND_BOOLEAN;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case FLOAT4OID:
		case FLOAT8OID:
			return USAGE_KIND_NUMBER;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return USAGE_KIND_TIME;
		default:
			return USAGE_KIND_STRING;
	}
}

/* Check that a column's declaration options fit together and its type. */
static void
check_column(DeclBuild *b, ColumnDecl *cd, UsageTimeFormat *format)
{
	bool		ranged = cd->param_from || cd->param_to;

	*format = USAGE_TIME_ISO8601;
	if (cd->format)
		(void) parse_format(cd->format, format);
	if (cd->param && ranged)
		column_error(b, cd, "option \"param\" cannot be combined with \"param_from\" or \"param_to\"",
					 "A column is either one parameter (param) or the range of two (param_from, param_to).");
	if (ranged && !usage_is_datetime_type(cd->typid))
		column_error(b, cd, psprintf("options \"param_from\" and \"param_to\" need a date, timestamp or timestamptz column, not %s",
									 format_type_be(cd->typid)),
					 "Declare the column as timestamptz, or give the parameter with \"param\".");
	if (cd->format && !usage_is_datetime_type(cd->typid))
		column_error(b, cd, psprintf("option \"param_format\" needs a date, timestamp or timestamptz column, not %s",
									 format_type_be(cd->typid)),
					 "Drop param_format: values of this column are sent as they are.");
	if ((cd->format || cd->has_required) && !cd->param && !ranged)
		column_error(b, cd, "options \"required\" and \"param_format\" need \"param\", \"param_from\" or \"param_to\"",
					 "Name the request parameter the column stands for with param 'name'.");
	if ((cd->param_from && path_has(b->ep->path, cd->param_from)) ||
		(cd->param_to && path_has(b->ep->path, cd->param_to)))
		column_error(b, cd, "a range parameter cannot be in the path",
					 "Give the path parameter with param 'name' on a column of its own.");
}

/* Refuse a second declaration of a parameter name. */
static void
check_unique(DeclBuild *b, ColumnDecl *cd, const char *name)
{
	for (int i = 0; i < b->nparams; i++)
	{
		const UsageParamDef *def = &b->params[i];

		if ((def->api_name && strcmp(def->api_name, name) == 0) ||
			(def->api_name_end && strcmp(def->api_name_end, name) == 0))
			column_error(b, cd, psprintf("parameter \"%s\" is declared twice", name),
						 "Declare each request parameter on one column.");
	}
}

/* The parameter a column declares, appended to b->params. */
static void
add_column_param(DeclBuild *b, ColumnDecl *cd)
{
	UsageParamDef *def = &b->params[b->nparams];
	UsageTimeFormat format;
	const UsageParamDef *builtin;

	check_column(b, cd, &format);
	if (cd->param)
		check_unique(b, cd, cd->param);
	if (cd->param_from)
		check_unique(b, cd, cd->param_from);
	if (cd->param_to)
		check_unique(b, cd, cd->param_to);

	memset(def, 0, sizeof(UsageParamDef));
	def->place = strcmp(b->ep->method, "GET") == 0 ?
		USAGE_PLACE_QUERY : USAGE_PLACE_BODY;
	def->key = cd->colname;		/* see usage_map_columns */
	def->format = format;
	def->required = cd->required;
	def->narrows = 0.1;
	if (cd->param)
	{
		def->api_name = cd->param;
		def->kind = point_kind(cd->typid);
		def->echo = !cd->has_json_key;
		if (path_has(b->ep->path, cd->param))
		{
			def->place = USAGE_PLACE_PATH;
			def->required = true;
		}
		/* a parameter the provider's built-in endpoints know, bound alike */
		builtin = usage_provider_param(b->provider, cd->param);
		if (builtin && builtin->key != NULL)
		{
			def->option = builtin->option;
			def->guid = builtin->guid;
		}
	}
	else
	{
		def->api_name = cd->param_from;
		def->api_name_end = cd->param_to;
		def->kind = USAGE_KIND_TIME_RANGE;
		def->whole_days = cd->typid == DATEOID;
		def->narrows = 0.25;
	}
	b->nparams++;
}

/*
 * Every {name} of the path needs a parameter: a column's, or for
 * {organizationId} the server's organization_id.
 */
static void
add_path_params(DeclBuild *b)
{
	for (const char *p = strchr(b->ep->path, '{'); p; p = strchr(p + 1, '{'))
	{
		const char *end = strchr(p, '}');
		char	   *name = pnstrdup(p + 1, end - p - 1);
		const UsageParamDef *builtin;
		bool		found = false;

		for (int i = 0; i < b->nparams && !found; i++)
			found = b->params[i].place == USAGE_PLACE_PATH &&
				strcmp(b->params[i].api_name, name) == 0;
		if (found)
			continue;
		builtin = usage_provider_param(b->provider, name);
		if (builtin && builtin->key == NULL && builtin->place == USAGE_PLACE_PATH)
		{
			b->params[b->nparams++] = *builtin;
			continue;
		}
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("option \"path\" of foreign table %s has {%s}, but no column is the parameter \"%s\"",
						b->table_name, name, name),
				 errhint("Add a column with OPTIONS (param '%s').", name)));
	}
}

/*
 * A binding option of the table (tenant, tenant_id, ...) must bind a
 * parameter of the declaration.
 */
static void
check_bindings(DeclBuild *b)
{
	ListCell   *lc;

	foreach(lc, b->table_options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);
		bool		found = false;

		if (usage_find_binding(d->defname, NULL) == NULL)
			continue;
		for (int i = 0; i < b->nparams && !found; i++)
			found = b->params[i].option != NULL &&
				strcmp(b->params[i].option, d->defname) == 0;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"%s\" of foreign table %s binds no parameter of its declared endpoint",
							d->defname, b->table_name),
					 errhint("Declare the parameter it binds on a column, with OPTIONS (param '%s').",
							 usage_find_binding(d->defname, NULL)->api_name)));
	}
}

/* A WHERE clause that gives every required parameter, for HINTs. */
static char *
example_where(DeclBuild *b, ColumnDecl *cols, int ncols)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int c = 0; c < ncols; c++)
	{
		ColumnDecl *cd = &cols[c];
		const char *sep = buf.len > 0 ? " AND " : "";
		bool		in_path = cd->param && path_has(b->ep->path, cd->param);

		if (!cd->required && !in_path)
			continue;
		if (cd->param_from || cd->param_to)
			appendStringInfo(&buf, "%s%s >= current_date - 30", sep,
							 quote_identifier(cd->colname));
		else
			appendStringInfo(&buf, "%s%s = '...'", sep,
							 quote_identifier(cd->colname));
	}
	return buf.len > 0 ? buf.data : NULL;
}

/* The endpoint fields that come from the table options. */
static void
read_table_options(DeclBuild *b)
{
	UsageEndpoint *ep = b->ep;
	bool		avepoint = b->provider == USAGE_PROVIDER_AVEPOINT;
	const char *paging;
	const char *size_param;

	ep->path = table_option(b, "path", NULL);
	ep->method = table_option(b, "method", "GET");
	ep->rows = table_option(b, "rows", NULL);
	if (ep->rows == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("foreign table %s declares an endpoint (option \"path\") but not option \"rows\"",
						b->table_name),
				 errhint("Give the JSON pointer to the array of rows in the response, such as rows '/items', or rows '' for the whole response as one row.")));
	paging = table_option(b, "paging", avepoint ? "next_link" : "none");
	ep->paging = strcmp(paging, "next_link") == 0 ?
		USAGE_PAGING_NEXTLINK : USAGE_PAGING_NONE;
	ep->next_link = table_option(b, "next_link", "/nextLink");
	size_param = table_option(b, "page_size_param", avepoint ? "top" : "");
	ep->page_size_param = size_param[0] ? size_param : NULL;
	ep->name = ep->path;
	ep->provider = b->provider;
	ep->declared = true;
	ep->rows_per_request = ep->rows[0] == '\0' ? 1.0 : DECLARED_ROWS_PER_CALL;
}

/*
 * usage_declared_endpoint
 *		The endpoint description of a foreign table that declares its own
 *		endpoint, built from its options and its columns' options.
 *
 * Raises an error naming the option for a declaration that cannot work.
 * The parameters come in column order, then the path's server parameters:
 * the order is part of the plan (fdw_private refers to parameters by
 * index), and is the same each time the table's definition is read.
 */
const UsageEndpoint *
usage_declared_endpoint(Oid relid, UsageProvider provider, List *table_options)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	tupdesc = RelationGetDescr(rel);
	DeclBuild	b;
	ColumnDecl *cols = palloc0(sizeof(ColumnDecl) * Max(tupdesc->natts, 1));
	int			ncols = 0;
	int			maxparams;

	memset(&b, 0, sizeof(b));
	b.ep = palloc0(sizeof(UsageEndpoint));
	b.provider = provider;
	b.table_options = table_options;
	b.table_name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
											  RelationGetRelationName(rel));
	read_table_options(&b);

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (!att->attisdropped)
			read_column(relid, att, &cols[ncols++]);
	}
	/* a parameter per column at most, plus the path's server parameters */
	maxparams = ncols + (int) strlen(b.ep->path) / 3 + 1;
	b.params = palloc0(sizeof(UsageParamDef) * maxparams);
	for (int c = 0; c < ncols; c++)
	{
		if (cols[c].param || cols[c].param_from || cols[c].param_to ||
			cols[c].format || cols[c].has_required)
			add_column_param(&b, &cols[c]);
	}
	add_path_params(&b);
	check_bindings(&b);

	b.ep->params = b.params;
	b.ep->nparams = b.nparams;
	b.ep->example_where = example_where(&b, cols, ncols);
	if (b.ep->example_where == NULL)
		b.ep->example_where = "...";
	/* the lock is kept until the end of the transaction, as the planner's */
	table_close(rel, NoLock);
	return b.ep;
}

/*
 * usage_check_builtin_columns
 *		Refuse the column options of a declaration on a table of a built-in
 *		endpoint, whose parameters the catalogue fixes: they would be
 *		silently ignored.
 */
void
usage_check_builtin_columns(Oid relid, const char *table_name)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	tupdesc = RelationGetDescr(rel);

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		ListCell   *lc;

		if (att->attisdropped)
			continue;
		foreach(lc, GetForeignColumnOptions(relid, att->attnum))
		{
			DefElem    *d = (DefElem *) lfirst(lc);

			if (strcmp(d->defname, "json_key") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
						 errmsg("option \"%s\" of column \"%s\" is only valid on a foreign table that declares its endpoint",
								d->defname, NameStr(att->attname)),
						 errdetail("Foreign table %s uses a built-in endpoint, whose parameters are fixed.",
								   table_name),
						 errhint("Drop the option, or declare the endpoint with the table options path and rows instead of endpoint.")));
		}
	}
	table_close(rel, AccessShareLock);
}

/* Does a foreign table with these options declare its own endpoint? */
bool
usage_table_is_declared(List *table_options)
{
	ListCell   *lc;

	foreach(lc, table_options)
	{
		if (strcmp(((DefElem *) lfirst(lc))->defname, "path") == 0)
			return true;
	}
	return false;
}
