/*-------------------------------------------------------------------------
 *
 * version.c
 *		  usage_fdw_version(): the version of the loaded library.
 *
 * The version is written once, as default_version in usage_fdw.control; the
 * Makefile passes it to the compiler as USAGE_FDW_VERSION.  The function
 * returns the library's version, the code that actually runs.  When the
 * extension's SQL objects in this database are at another version (the
 * library was upgraded, ALTER EXTENSION usage_fdw UPDATE not yet run), it
 * says so in a WARNING and still returns the library's version.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_extension.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#ifndef USAGE_FDW_VERSION
#error "USAGE_FDW_VERSION is not defined: build with the Makefile (it reads usage_fdw.control)"
#endif
StaticAssertDecl(sizeof(USAGE_FDW_VERSION) > 1,
				 "USAGE_FDW_VERSION is empty: usage_fdw.control has no default_version");

PG_FUNCTION_INFO_V1(usage_fdw_version);

/*
 * The extversion of the usage_fdw extension in the current database, or
 * NULL when it is not installed here (the C function called through a
 * definition of its own).
 */
static char *
installed_extversion(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *result = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("usage_fdw"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		Datum		datum;
		bool		isnull;

		datum = heap_getattr(tuple, Anum_pg_extension_extversion,
							 RelationGetDescr(rel), &isnull);
		if (!isnull)
			result = text_to_cstring(DatumGetTextPP(datum));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * usage_fdw_version() returns text: the loaded library's version.  A WARNING
 * when the installed extension's SQL objects are at another version.
 */
Datum
usage_fdw_version(PG_FUNCTION_ARGS)
{
	char	   *extversion = installed_extversion();

	if (extversion != NULL && strcmp(extversion, USAGE_FDW_VERSION) != 0)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("usage_fdw library version %s does not match the installed extension version %s",
						USAGE_FDW_VERSION, extversion),
				 errhint("Run ALTER EXTENSION usage_fdw UPDATE in this database.")));
	PG_RETURN_TEXT_P(cstring_to_text(USAGE_FDW_VERSION));
}
