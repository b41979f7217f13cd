/*-------------------------------------------------------------------------
 *
 * columns.c
 *		  Column mapping: how each attribute of a foreign table is filled,
 *		  from a response key, as the echo of a request parameter, or with
 *		  the whole response item; and which columns are parameters.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "usage_fdw.h"

/*
 * How each attribute of the table is filled: from a response key, as the
 * echo of a request parameter, or with the whole item.  A column whose key
 * matches a parameter of the endpoint is a parameter column: clauses on it
 * are pushed down.  *param_col is set to the map from parameter to column:
 * per parameter of the endpoint, the index of its (first) column, or -1
 * when the table has none.
 */
UsageColumn *
usage_map_columns(Relation rel, const UsageEndpoint *ep, bool for_execution,
			int **param_col)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	UsageColumn *cols = palloc0(sizeof(UsageColumn) * Max(tupdesc->natts, 1));
	int		   *map = palloc(sizeof(int) * Max(ep->nparams, 1));

	for (int p = 0; p < ep->nparams; p++)
		map[p] = -1;

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		UsageColumn *c = &cols[i];
		bool		explicit_key;
		int			p;

		c->param = -1;
		if (att->attisdropped)
		{
			c->kind = USAGE_COL_DROPPED;
			continue;
		}
		c->name = pstrdup(NameStr(att->attname));
		c->typid = att->atttypid;
		c->typmod = att->atttypmod;
		c->key = usage_column_json_key(RelationGetRelid(rel), att->attnum, &explicit_key);
		if (!explicit_key && strcmp(c->key, c->name) != 0)
			c->alt_key = c->name;

		if (strcmp(c->key, "*") == 0)
		{
			if (c->typid != JSONOID && c->typid != JSONBOID && c->typid != TEXTOID)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
						 errmsg("column \"%s\" of foreign table \"%s\" has json_key '*' but type %s",
								c->name, RelationGetRelationName(rel),
								format_type_be(c->typid)),
						 errhint("json_key '*' (the whole item) needs a json, jsonb or text column.")));
			c->kind = USAGE_COL_WHOLE_ITEM;
		}
		else
		{
			if (ep->declared)
				p = usage_find_param_by_key(ep, c->name);
			else
			{
				p = usage_find_param_by_key(ep, c->key);
				if (p < 0 && c->alt_key)
					p = usage_find_param_by_key(ep, c->alt_key);
			}
			c->param = p;
			c->kind = (p >= 0 && ep->params[p].echo) ? USAGE_COL_ECHO : USAGE_COL_RESPONSE;
			if (p >= 0 && map[p] < 0)
				map[p] = i;
		}

		if (for_execution)
		{
			getTypeInputInfo(c->typid, &c->typinput, &c->typioparam);
			fmgr_info(c->typinput, &c->inflinfo);
		}
	}
	*param_col = map;
	return cols;
}

/*
 * "consumed_by_self" -> "consumedBySelf"
 */
char *
usage_camel_case(const char *name)
{
	StringInfoData buf;
	bool		upper_next = false;

	initStringInfo(&buf);
	for (const char *p = name; *p; p++)
	{
		if (*p == '_' && buf.len > 0)
		{
			upper_next = true;
			continue;
		}
		if (upper_next)
			appendStringInfoChar(&buf, pg_toupper((unsigned char) *p));
		else
			appendStringInfoChar(&buf, *p);
		upper_next = false;
	}
	return buf.data;
}

/*
 * The json_key option of a column, or its camelCase name.
 */
char *
usage_column_json_key(Oid relid, AttrNumber attnum, bool *explicit_key)
{
	List	   *options = GetForeignColumnOptions(relid, attnum);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, "json_key") == 0)
		{
			*explicit_key = true;
			return defGetString(d);
		}
	}
	*explicit_key = false;
	return usage_camel_case(get_attname(relid, attnum, false));
}
