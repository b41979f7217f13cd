/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		  The endpoint catalogue of usage_fdw.
 *
 * Every endpoint is described here as data: HTTP method, path template,
 * request parameters (where they go, their JSON type, the column that binds
 * them, whether the API requires them), the key of the response array, the
 * pagination style, and the columns of the standard table that IMPORT
 * FOREIGN SCHEMA creates.  No other module has per-endpoint code: adding an
 * endpoint means adding an entry here, plus tests.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "usage_fdw.h"

/* ---------------------------------------------------------------
 * AvePoint Graph API: connection usage of Power Automate cloud flows
 * ---------------------------------------------------------------
 */
static const UsageParamDef cloudflow_params[] = {
	/*
	 * key, api_name, api_name_end, option, place, kind, required, echo,
	 * absent_echo, narrows, not_after, guid
	 */
	{"flowId", "flowId", NULL, NULL,
	USAGE_PLACE_QUERY, USAGE_KIND_STRING, false, false, NULL, 0.0002, NULL, false},
	{"tenant", "tenant", NULL, "tenant",
	USAGE_PLACE_QUERY, USAGE_KIND_STRING, false, true, NULL, 0.5, NULL, false},
};

static const UsageColumnDef cloudflow_columns[] = {
	{"flow_id", "pg_catalog.text",
	"Response flowId: the cloud flow. Request parameter flowId: WHERE flow_id = ... or IN (...) asks for those flows only."},
	{"environment_id", "pg_catalog.text",
	"Response environmentId: the environment the flow belongs to."},
	{"connection_id", "pg_catalog.text",
	"Response connectionId: the connection the flow uses."},
	{"tenant", "pg_catalog.text",
	"Request parameter tenant (echo): the tenant the request was filtered on, NULL when not filtered."},
};

/* ---------------------------------------------------------------
 * UiPath lease usage API
 * ---------------------------------------------------------------
 */
static const UsageParamDef by_folder_params[] = {
	{NULL, "organizationId", NULL, "organization_id",
	USAGE_PLACE_PATH, USAGE_KIND_STRING, true, false, NULL, 1.0, NULL, true},
	{"tenantId", "tenantId", NULL, "tenant_id",
	USAGE_PLACE_BODY, USAGE_KIND_STRING, true, true, NULL, 1.0, NULL, true},
	{"startDate", "startDate", NULL, NULL,
	USAGE_PLACE_BODY, USAGE_KIND_EPOCH_MS, true, true, NULL, 1.0, "endDate", false},
	{"endDate", "endDate", NULL, NULL,
	USAGE_PLACE_BODY, USAGE_KIND_EPOCH_MS, true, true, NULL, 1.0, NULL, false},
	{"consumableCode", "consumableCode", NULL, "consumable_code",
	USAGE_PLACE_BODY, USAGE_KIND_STRING, true, true, NULL, 1.0, NULL, false},
	{"aggregateByOwnership", "aggregateByOwnership", NULL, "aggregate_by_ownership",
	USAGE_PLACE_BODY, USAGE_KIND_BOOLEAN, false, true, "false", 1.0, NULL, false},
};

static const UsageColumnDef by_folder_columns[] = {
	{"tenant_id", "pg_catalog.text",
	"Request parameter tenantId (echo; required): WHERE tenant_id = ... or IN (...)."},
	{"start_date", "pg_catalog.timestamptz",
	"Request parameter startDate (echo; required), sent as unix milliseconds: WHERE start_date = ..."},
	{"end_date", "pg_catalog.timestamptz",
	"Request parameter endDate (echo; required), sent as unix milliseconds: WHERE end_date = ..."},
	{"consumable_code", "pg_catalog.text",
	"Request parameter consumableCode (echo; required): WHERE consumable_code = ... or IN (...)."},
	{"aggregate_by_ownership", "pg_catalog.bool",
	"Request parameter aggregateByOwnership (echo; false when not sent)."},
	{"folder_key", "pg_catalog.text", "Response folderKey: the folder."},
	{"folder_name", "pg_catalog.text", "Response folderName."},
	{"parent_folder_key", "pg_catalog.text", "Response parentFolderKey, NULL for a root folder."},
	{"consumed_by_self", "pg_catalog.numeric", "Response consumedBySelf: units consumed in the folder."},
	{"process_count_self", "pg_catalog.int8", "Response processCountSelf: processes run in the folder."},
};

static const UsageParamDef daily_params[] = {
	{NULL, "organizationId", NULL, "organization_id",
	USAGE_PLACE_PATH, USAGE_KIND_STRING, true, false, NULL, 1.0, NULL, true},
	{"tenantId", "tenantId", NULL, "tenant_id",
	USAGE_PLACE_BODY, USAGE_KIND_STRING, true, true, NULL, 1.0, NULL, true},
	{"date", "startDate", "endDate", NULL,
	USAGE_PLACE_BODY, USAGE_KIND_DATE_RANGE, true, false, NULL, 1.0, NULL, false},
	{"consumableCode", "consumableCode", NULL, "consumable_code",
	USAGE_PLACE_BODY, USAGE_KIND_STRING, true, true, NULL, 1.0, NULL, false},
	{"aggregateByOwnership", "aggregateByOwnership", NULL, "aggregate_by_ownership",
	USAGE_PLACE_BODY, USAGE_KIND_BOOLEAN, false, true, "false", 1.0, NULL, false},
	{"folderKey", "folderKeys", NULL, NULL,
	USAGE_PLACE_BODY, USAGE_KIND_STRING_LIST, false, true, NULL, 0.2, NULL, false},
};

static const UsageColumnDef daily_columns[] = {
	{"tenant_id", "pg_catalog.text",
	"Request parameter tenantId (echo; required): WHERE tenant_id = ... or IN (...)."},
	{"consumable_code", "pg_catalog.text",
	"Request parameter consumableCode (echo; required): WHERE consumable_code = ... or IN (...)."},
	{"aggregate_by_ownership", "pg_catalog.bool",
	"Request parameter aggregateByOwnership (echo; false when not sent)."},
	{"folder_key", "pg_catalog.text",
	"Request parameter folderKeys = [folder_key] (echo; NULL when not filtered): WHERE folder_key = ..."},
	{"date", "pg_catalog.date",
	"Response date (UTC day). Its range in WHERE becomes startDate/endDate; a lower bound is required."},
	{"service", "pg_catalog.text", "Response service."},
	{"consumed_amount", "pg_catalog.numeric", "Response consumedAmount."},
};

#define lengthof_array(a) ((int) (sizeof(a) / sizeof((a)[0])))

static const UsageEndpoint endpoints[] = {
	{
		"cloud_flow_connection_usage", USAGE_PROVIDER_AVEPOINT, "GET",
		"/smp/powerplatform/connectionusage/cloudflows",
		"connectionUsageCloudFlows", USAGE_PAGING_NEXTLINK, "top",
		cloudflow_params, lengthof_array(cloudflow_params),
		cloudflow_columns, lengthof_array(cloudflow_columns),
		25000.0,
		"AvePoint: connection usage of Power Automate cloud flows (GET /smp/powerplatform/connectionusage/cloudflows).",
		"flow_id = '...'"
	},
	{
		"consumption_by_folder", USAGE_PROVIDER_UIPATH, "POST",
		"/lease_/api/usage/{organizationId}/tenants/consumption-by-folder",
		"items", USAGE_PAGING_NONE, NULL,
		by_folder_params, lengthof_array(by_folder_params),
		by_folder_columns, lengthof_array(by_folder_columns),
		50.0,
		"UiPath: consumption by folder for one tenant, date range and consumable (POST .../tenants/consumption-by-folder).",
		"tenant_id = '...' AND consumable_code = '...' AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00'"
	},
	{
		"daily_consumption_by_service", USAGE_PROVIDER_UIPATH, "POST",
		"/lease_/api/usage/{organizationId}/tenants/daily-consumption-by-service",
		"items", USAGE_PAGING_NONE, NULL,
		daily_params, lengthof_array(daily_params),
		daily_columns, lengthof_array(daily_columns),
		300.0,
		"UiPath: daily consumption by service for one tenant and consumable (POST .../tenants/daily-consumption-by-service).",
		"tenant_id = '...' AND consumable_code = '...' AND date >= current_date - 30"
	},
};

const UsageEndpoint *
usage_find_endpoint(const char *name)
{
	for (int i = 0; i < lengthof_array(endpoints); i++)
	{
		if (strcmp(endpoints[i].name, name) == 0)
			return &endpoints[i];
	}
	return NULL;
}

int
usage_endpoint_count(void)
{
	return lengthof_array(endpoints);
}

const UsageEndpoint *
usage_endpoint_at(int i)
{
	Assert(i >= 0 && i < lengthof_array(endpoints));
	return &endpoints[i];
}

const char *
usage_provider_name(UsageProvider provider)
{
	switch (provider)
	{
		case USAGE_PROVIDER_UIPATH:
			return "uipath";
		case USAGE_PROVIDER_AVEPOINT:
			return "avepoint";
	}
	return "?";
}

bool
usage_provider_from_name(const char *name, UsageProvider *provider)
{
	if (strcmp(name, "uipath") == 0)
		*provider = USAGE_PROVIDER_UIPATH;
	else if (strcmp(name, "avepoint") == 0)
		*provider = USAGE_PROVIDER_AVEPOINT;
	else
		return false;
	return true;
}

/*
 * Comma-separated endpoint names, of one provider or of all, for messages.
 */
char *
usage_endpoint_names(UsageProvider provider, bool all)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < lengthof_array(endpoints); i++)
	{
		if (!all && endpoints[i].provider != provider)
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, endpoints[i].name);
	}
	return buf.data;
}

int
usage_find_param_by_key(const UsageEndpoint *ep, const char *key)
{
	for (int i = 0; i < ep->nparams; i++)
	{
		if (ep->params[i].key && strcmp(ep->params[i].key, key) == 0)
			return i;
	}
	return -1;
}

int
usage_find_param_by_option(const UsageEndpoint *ep, const char *option)
{
	for (int i = 0; i < ep->nparams; i++)
	{
		if (ep->params[i].option && strcmp(ep->params[i].option, option) == 0)
			return i;
	}
	return -1;
}

/*
 * The parameter an option binds (a server or table option that fixes a
 * request parameter with a column, such as tenant_id), and the provider it
 * belongs to (when provider is not NULL); NULL when the name binds nothing.
 */
const UsageParamDef *
usage_find_binding(const char *option, UsageProvider *provider)
{
	for (int i = 0; i < lengthof_array(endpoints); i++)
	{
		const UsageEndpoint *ep = &endpoints[i];

		for (int p = 0; p < ep->nparams; p++)
		{
			const UsageParamDef *def = &ep->params[p];

			if (def->key != NULL && def->option != NULL &&
				strcmp(def->option, option) == 0)
			{
				if (provider)
					*provider = ep->provider;
				return def;
			}
		}
	}
	return NULL;
}

/*
 * The provider of an option that sets a request parameter (a binding, or a
 * path parameter such as organization_id); false for other options.
 */
bool
usage_option_provider(const char *option, UsageProvider *provider)
{
	for (int i = 0; i < lengthof_array(endpoints); i++)
	{
		if (usage_find_param_by_option(&endpoints[i], option) >= 0)
		{
			*provider = endpoints[i].provider;
			return true;
		}
	}
	return false;
}

/* The names of all binding options, each once, in catalogue order. */
List *
usage_binding_options(void)
{
	List	   *names = NIL;

	for (int i = 0; i < lengthof_array(endpoints); i++)
	{
		const UsageEndpoint *ep = &endpoints[i];

		for (int p = 0; p < ep->nparams; p++)
		{
			const UsageParamDef *def = &ep->params[p];
			ListCell   *lc;
			bool		seen = false;

			if (def->key == NULL || def->option == NULL)
				continue;
			foreach(lc, names)
				seen = seen || strcmp((char *) lfirst(lc), def->option) == 0;
			if (!seen)
				names = lappend(names, (char *) def->option);
		}
	}
	return names;
}

/*
 * Is the value of this option (a binding, or a path parameter such as
 * organization_id) documented as a GUID?  The catalogue says so, for every
 * parameter the option sets.
 */
bool
usage_option_is_guid(const char *option)
{
	for (int i = 0; i < lengthof_array(endpoints); i++)
	{
		int			p = usage_find_param_by_option(&endpoints[i], option);

		if (p >= 0 && endpoints[i].params[p].guid)
			return true;
	}
	return false;
}

/*
 * Does the endpoint return or take the JSON key?  Its request parameters'
 * keys, and the response keys of its standard columns (their names in
 * camelCase).
 */
bool
usage_endpoint_knows_key(const UsageEndpoint *ep, const char *key)
{
	if (usage_find_param_by_key(ep, key) >= 0)
		return true;
	for (int c = 0; c < ep->ncolumns; c++)
	{
		char	   *camel = usage_camel_case(ep->columns[c].name);
		bool		same = strcmp(camel, key) == 0;

		pfree(camel);
		if (same)
			return true;
	}
	return false;
}

/* The JSON keys an endpoint knows, comma-separated, for messages. */
char *
usage_endpoint_keys(const UsageEndpoint *ep)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int c = 0; c < ep->ncolumns; c++)
	{
		char	   *camel = usage_camel_case(ep->columns[c].name);

		appendStringInfo(&buf, "%s%s", c > 0 ? ", " : "", camel);
		pfree(camel);
	}
	return buf.data;
}
