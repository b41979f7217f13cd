/*-------------------------------------------------------------------------
 *
 * ddl.c
 *		  IMPORT FOREIGN SCHEMA, and the checks of usage_fdw's DDL event
 *		  trigger.
 *
 * IMPORT FOREIGN SCHEMA uipath|avepoint creates the standard tables of the
 * endpoint catalogue.  The FDW API only lets it return CREATE FOREIGN TABLE
 * commands, so the column comments (which column is a request parameter)
 * are added by the event trigger that the extension installs; the same
 * trigger checks what the option validator cannot see: that a table's
 * endpoint belongs to its server's provider, also after ALTER SERVER.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "commands/comment.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "usage_fdw.h"

PG_FUNCTION_INFO_V1(usage_fdw_check_object);

static bool
table_listed(List *tables, const char *name)
{
	ListCell   *lc;

	foreach(lc, tables)
	{
		RangeVar   *rv = (RangeVar *) lfirst(lc);

		if (strcmp(rv->relname, name) == 0)
			return true;
	}
	return false;
}

List *
usage_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	UsageProvider provider = USAGE_PROVIDER_UIPATH;
	UsageProvider wanted;
	ListCell   *lc;
	List	   *commands = NIL;

	foreach(lc, server->options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, "provider") == 0)
			(void) usage_provider_from_name(defGetString(d), &provider);
	}

	if (!usage_provider_from_name(stmt->remote_schema, &wanted))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("remote schema \"%s\" does not exist", stmt->remote_schema),
				 errhint("The remote schema of server \"%s\" is \"%s\", its provider.",
						 server->servername, usage_provider_name(provider))));
	if (wanted != provider)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("server \"%s\" is of provider \"%s\" and cannot import schema \"%s\"",
						server->servername, usage_provider_name(provider),
						stmt->remote_schema),
				 errhint("Import \"%s\" from this server, or \"%s\" from a server with provider '%s'.",
						 usage_provider_name(provider), stmt->remote_schema,
						 stmt->remote_schema)));

	for (int i = 0; i < usage_endpoint_count(); i++)
	{
		const UsageEndpoint *ep = usage_endpoint_at(i);
		StringInfoData buf;

		if (ep->provider != provider)
			continue;
		if (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO &&
			!table_listed(stmt->table_list, ep->name))
			continue;
		if (stmt->list_type == FDW_IMPORT_SCHEMA_EXCEPT &&
			table_listed(stmt->table_list, ep->name))
			continue;

		initStringInfo(&buf);
		appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (\n",
						 quote_identifier(ep->name));
		for (int c = 0; c < ep->ncolumns; c++)
			appendStringInfo(&buf, "  %s %s%s\n",
							 quote_identifier(ep->columns[c].name),
							 ep->columns[c].type,
							 c + 1 < ep->ncolumns ? "," : "");
		appendStringInfo(&buf, ") SERVER %s OPTIONS (endpoint %s)",
						 quote_identifier(server->servername),
						 quote_literal_cstr(ep->name));
		commands = lappend(commands, buf.data);
	}
	return commands;
}

static bool
is_usage_fdw_server(Oid serverid)
{
	ForeignServer *server = GetForeignServer(serverid);
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	char	   *handler;

	if (!OidIsValid(fdw->fdwhandler))
		return false;
	handler = get_func_name(fdw->fdwhandler);
	return handler && strcmp(handler, "usage_fdw_handler") == 0;
}

/* column comments of an imported standard table */
static void
comment_imported_table(Oid relid, const UsageEndpoint *ep)
{
	CreateComments(relid, RelationRelationId, 0, (char *) ep->comment);
	for (int c = 0; c < ep->ncolumns; c++)
	{
		AttrNumber	attnum = get_attnum(relid, ep->columns[c].name);

		if (attnum != InvalidAttrNumber)
			CreateComments(relid, RelationRelationId, attnum,
						   (char *) ep->columns[c].comment);
	}
}

/*
 * usage_fdw_check_object(classid oid, objid oid, tag text), called by the
 * extension's ddl_command_end event trigger for each object a command
 * created or altered.
 */
Datum
usage_fdw_check_object(PG_FUNCTION_ARGS)
{
	Oid			classid = PG_GETARG_OID(0);
	Oid			objid = PG_GETARG_OID(1);
	char	   *tag = text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (classid == RelationRelationId)
	{
		ForeignTable *ft;
		UsageOptions *opts;

		if (get_rel_relkind(objid) != RELKIND_FOREIGN_TABLE)
			PG_RETURN_VOID();
		ft = GetForeignTable(objid);
		if (!is_usage_fdw_server(ft->serverid))
			PG_RETURN_VOID();
		/* checks the endpoint against the server's provider */
		opts = usage_get_options(objid);
		if (strcmp(tag, "IMPORT FOREIGN SCHEMA") == 0)
			comment_imported_table(objid, opts->endpoint);
	}
	else if (classid == ForeignServerRelationId)
	{
		Relation	ftrel;
		SysScanDesc scan;
		HeapTuple	tup;

		if (!is_usage_fdw_server(objid))
			PG_RETURN_VOID();
		/* every table of the server must still fit its provider */
		ftrel = table_open(ForeignTableRelationId, AccessShareLock);
		scan = systable_beginscan(ftrel, InvalidOid, false, NULL, 0, NULL);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_foreign_table ft = (Form_pg_foreign_table) GETSTRUCT(tup);

			if (ft->ftserver == objid)
				(void) usage_get_options(ft->ftrelid);
		}
		systable_endscan(scan);
		table_close(ftrel, AccessShareLock);
	}
	PG_RETURN_VOID();
}
