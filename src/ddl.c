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
 * The trigger function is written in C and refuses to run other than as an
 * event trigger, so nothing here is SQL-callable: a role can only reach
 * these checks (and the comments they write) through DDL it was allowed to
 * run on objects it owns.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
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
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "commands/comment.h"
#include "commands/defrem.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "usage_fdw.h"

PG_FUNCTION_INFO_V1(usage_fdw_ddl_command_end);

static char *import_option_names(UsageProvider provider);

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

/*
 * The options of IMPORT FOREIGN SCHEMA: only the binding options of the
 * server's provider (tenant_id, consumable_code, ... ), which become table
 * options of every imported table whose endpoint has that parameter.
 * Anything else is refused, naming the options there are.
 */
static void
check_import_options(List *options, UsageProvider provider)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);
		UsageProvider owner;

		if (usage_find_binding(d->defname, &owner) != NULL && owner == provider)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\" for IMPORT FOREIGN SCHEMA", d->defname),
				 errhint("Valid options for IMPORT FOREIGN SCHEMA from a server of provider \"%s\" are the parameter bindings: %s.",
						 usage_provider_name(provider),
						 import_option_names(provider))));
	}
}

/* The binding options of a provider, comma-separated, for HINTs. */
static char *
import_option_names(UsageProvider provider)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, usage_binding_options())
	{
		const char *name = (const char *) lfirst(lc);
		UsageProvider owner;

		(void) usage_find_binding(name, &owner);
		if (owner == provider)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", name);
	}
	return buf.data;
}

/* The CREATE FOREIGN TABLE command of an imported standard table. */
static char *
import_table_command(const UsageEndpoint *ep, ForeignServer *server,
					 List *options)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (\n",
					 quote_identifier(ep->name));
	/* the types are schema-qualified: see UsageColumnDef */
	for (int c = 0; c < ep->ncolumns; c++)
	{
		const UsageColumnDef *col = &ep->columns[c];

		appendStringInfo(&buf, "  %s %s", quote_identifier(col->name),
						 col->type);
		if (col->options)
			appendStringInfo(&buf, " OPTIONS (%s)", col->options);
		appendStringInfo(&buf, "%s\n", c + 1 < ep->ncolumns ? "," : "");
	}
	appendStringInfo(&buf, ") SERVER %s OPTIONS (endpoint %s",
					 quote_identifier(server->servername),
					 quote_literal_cstr(ep->name));
	foreach(lc, options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (usage_find_param_by_option(ep, d->defname) >= 0)
			appendStringInfo(&buf, ", %s %s", quote_identifier(d->defname),
							 quote_literal_cstr(defGetString(d)));
	}
	appendStringInfoChar(&buf, ')');
	return buf.data;
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

	check_import_options(stmt->options, provider);

	for (int i = 0; i < usage_endpoint_count(); i++)
	{
		const UsageEndpoint *ep = usage_endpoint_at(i);

		if (ep->provider != provider)
			continue;
		if (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO &&
			!table_listed(stmt->table_list, ep->name))
			continue;
		if (stmt->list_type == FDW_IMPORT_SCHEMA_EXCEPT &&
			table_listed(stmt->table_list, ep->name))
			continue;

		commands = lappend(commands,
						   import_table_command(ep, server, stmt->options));
	}
	return commands;
}

/*
 * Is fdwhandler usage_fdw's handler?
 *
 * Names prove nothing (anyone who may create a function can call it
 * usage_fdw_handler, in any schema), so the function itself is compared: a
 * C function whose symbol is usage_fdw_handler and that resolves to this
 * very library's usage_fdw_handler.  The cheap catalog test comes first so
 * that another FDW's library is not loaded just to be compared.
 */
static bool
is_our_handler(Oid fdwhandler)
{
	HeapTuple	tup;
	Form_pg_proc proc;
	bool		candidate = false;
	FmgrInfo	flinfo;

	if (!OidIsValid(fdwhandler))
		return false;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fdwhandler));
	if (!HeapTupleIsValid(tup))
		return false;
	proc = (Form_pg_proc) GETSTRUCT(tup);
	if (proc->prolang == ClanguageId)
	{
		bool		isnull;
		Datum		src = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);

		candidate = !isnull &&
			strcmp(TextDatumGetCString(src), "usage_fdw_handler") == 0;
	}
	ReleaseSysCache(tup);
	if (!candidate)
		return false;

	fmgr_info(fdwhandler, &flinfo);
	return flinfo.fn_addr == usage_fdw_handler;
}

static bool
is_usage_fdw_server(Oid serverid)
{
	ForeignServer *server = GetForeignServer(serverid);
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);

	return is_our_handler(fdw->fdwhandler);
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
 * Warn about each column of a foreign table that reads a JSON key its
 * built-in endpoint neither returns nor takes: such a column is NULL in
 * every row, which is how a misspelt name would otherwise go unnoticed.
 * json_key '*' (the whole item) is fine.
 */
static void
warn_unknown_keys(Oid relid, const UsageEndpoint *ep, const char *table_name)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	tupdesc = RelationGetDescr(rel);

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		bool		explicit_key;
		char	   *key;

		if (att->attisdropped)
			continue;
		key = usage_column_json_key(relid, att->attnum, &explicit_key);
		if (strcmp(key, "*") == 0 || usage_endpoint_knows_key(ep, key) ||
			(!explicit_key && usage_endpoint_knows_key(ep, NameStr(att->attname))))
			continue;
		ereport(WARNING,
				(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
				 errmsg("column \"%s\" of foreign table %s reads JSON key \"%s\", which endpoint \"%s\" neither returns nor takes",
						NameStr(att->attname), table_name, key, ep->name),
				 errdetail("The column will be NULL in every row."),
				 errhint("The keys of endpoint \"%s\" are: %s.  Rename the column, or set its option json_key.",
						 ep->name, usage_endpoint_keys(ep))));
	}
	table_close(rel, AccessShareLock);
}

/*
 * The checks for one object that a command created or altered.
 */
static void
check_object(Oid classid, Oid objid, const char *tag)
{
	if (classid == RelationRelationId)
	{
		ForeignTable *ft;
		UsageOptions *opts;

		if (get_rel_relkind(objid) != RELKIND_FOREIGN_TABLE)
			return;
		ft = GetForeignTable(objid);
		if (!is_usage_fdw_server(ft->serverid))
			return;
		/*
		 * checks the endpoint against the server's provider, and builds a
		 * declared endpoint, with all its checks
		 */
		opts = usage_get_options(objid);
		if (opts->endpoint->declared)
			return;
		usage_check_builtin_columns(objid, opts->table_name);
		if (strcmp(tag, "IMPORT FOREIGN SCHEMA") == 0)
			comment_imported_table(objid, opts->endpoint);
		else
			warn_unknown_keys(objid, opts->endpoint, opts->table_name);
	}
	else if (classid == ForeignServerRelationId)
	{
		Relation	ftrel;
		SysScanDesc scan;
		HeapTuple	tup;

		if (!is_usage_fdw_server(objid))
			return;
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
}

/*
 * usage_fdw_ddl_command_end
 *		The extension's ddl_command_end event trigger: check_object() for
 *		each foreign table and server the command created or altered.
 *
 * The objects come from pg_event_trigger_ddl_commands(), read through SPI
 * and copied out before SPI is left; the checks run outside SPI.
 */
Datum
usage_fdw_ddl_command_end(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	const char *tag;
	Oid		   *classids;
	Oid		   *objids;
	uint64		n;
	int			rc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("usage_fdw_ddl_command_end() can only be called as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;
	tag = GetCommandTagName(trigdata->tag);

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	/*
	 * Every name schema-qualified and every operator spelt with
	 * OPERATOR(pg_catalog....): this runs with the DDL user's search_path,
	 * where a schema that another role can write may come first.
	 */
	rc = SPI_execute("SELECT classid, objid FROM pg_catalog.pg_event_trigger_ddl_commands()"
					 " WHERE classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid"
					 " OR classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_foreign_server'::pg_catalog.regclass::pg_catalog.oid",
					 true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	n = SPI_processed;
	/* in the caller's memory context, so that they outlive SPI_finish */
	classids = (Oid *) SPI_palloc(sizeof(Oid) * Max(n, 1));
	objids = (Oid *) SPI_palloc(sizeof(Oid) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		classids[i] = DatumGetObjectId(SPI_getbinval(row, desc, 1, &isnull));
		objids[i] = DatumGetObjectId(SPI_getbinval(row, desc, 2, &isnull));
	}
	SPI_finish();

	for (uint64 i = 0; i < n; i++)
	{
		bool		seen = false;

		/* a command may report an object more than once: check it once */
		for (uint64 j = 0; j < i && !seen; j++)
			seen = classids[j] == classids[i] && objids[j] == objids[i];
		if (!seen)
			check_object(classids[i], objids[i], tag);
	}

	PG_RETURN_VOID();
}
