/*-------------------------------------------------------------------------
 *
 * module.c
 *		  The module's magic block, its start (_PG_init: the HTTP layer,
 *		  settings, the batched join's planner hook) and the FDW handler.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "utils/guc.h"

#include "batch.h"

/*
 * PostgreSQL 18 on: the library names itself and its version (shown by
 * pg_get_loaded_modules()); USAGE_FDW_VERSION comes from the Makefile.
 */
#ifdef PG_MODULE_MAGIC_EXT
PG_MODULE_MAGIC_EXT(.name = "usage_fdw",.version = USAGE_FDW_VERSION);
#else
PG_MODULE_MAGIC;
#endif

PG_FUNCTION_INFO_V1(usage_fdw_handler);

void		_PG_init(void);

/* Module load: the HTTP layer, the batched join's planner hook, settings. */
void
_PG_init(void)
{
	usage_http_init();
	usage_batch_init();
	usage_option_init();
	/* every other usage_fdw.* setting is a typo */
	MarkGUCPrefixReserved("usage_fdw");
}

/*
 * The FDW handler: the planner's callbacks (plan.c), the executor's
 * (scan.c), and IMPORT FOREIGN SCHEMA (ddl.c).
 */
Datum
usage_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	usage_plan_routine(routine);
	usage_scan_routine(routine);
	routine->ImportForeignSchema = usage_import_foreign_schema;
	PG_RETURN_POINTER(routine);
}
