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

/*
 * The fields of the parameters below, by name: every entry says what it
 * means, and an entry that leaves a field out takes its zero (no key, no
 * option, a string in the query, not required, not an echo).
 */
#define GUID_PARAM(k, name, opt, where) \
	{.key = (k), .api_name = (name), .option = (opt), .place = (where), \
	 .kind = USAGE_KIND_STRING, .required = true, .echo = (k) != NULL, \
	 .narrows = 1.0, .guid = true}

/* ---------------------------------------------------------------
 * AvePoint Graph API: connection usage of Power Automate cloud flows
 * ---------------------------------------------------------------
 */
static const UsageParamDef cloudflow_params[] = {
	{.key = "flowId", .api_name = "flowId", .place = USAGE_PLACE_QUERY,
	.kind = USAGE_KIND_STRING, .narrows = 0.0002},
	{.key = "tenant", .api_name = "tenant", .option = "tenant",
		.place = USAGE_PLACE_QUERY, .kind = USAGE_KIND_STRING, .echo = true,
	.narrows = 0.5},
};

static const UsageColumnDef cloudflow_columns[] = {
	{"flow_id", "pg_catalog.text", NULL,
	"Response flowId: the cloud flow. Request parameter flowId: WHERE flow_id = ... or IN (...) asks for those flows only."},
	{"environment_id", "pg_catalog.text", NULL,
	"Response environmentId: the environment the flow belongs to."},
	{"connection_id", "pg_catalog.text", NULL,
	"Response connectionId: the connection the flow uses."},
	{"tenant", "pg_catalog.text", NULL,
	"Request parameter tenant (echo): the tenant the request was filtered on, NULL when not filtered."},
};

/* ---------------------------------------------------------------
 * UiPath lease usage API
 * ---------------------------------------------------------------
 */

/* startDate, endDate and consumableCode: every endpoint of the family */
#define UIPATH_PERIOD_PARAMS \
	{.key = "startDate", .api_name = "startDate", .place = USAGE_PLACE_BODY, \
	 .kind = USAGE_KIND_TIME, .format = USAGE_TIME_EPOCH_MS, .required = true, \
	 .echo = true, .narrows = 1.0, .not_after = "endDate"}, \
	{.key = "endDate", .api_name = "endDate", .place = USAGE_PLACE_BODY, \
	 .kind = USAGE_KIND_TIME, .format = USAGE_TIME_EPOCH_MS, .required = true, \
	 .echo = true, .narrows = 1.0}

#define UIPATH_CODE_PARAM \
	{.key = "consumableCode", .api_name = "consumableCode", \
	 .option = "consumable_code", .place = USAGE_PLACE_BODY, \
	 .kind = USAGE_KIND_STRING, .required = true, .echo = true, .narrows = 1.0}

#define UIPATH_OWNERSHIP_PARAM \
	{.key = "aggregateByOwnership", .api_name = "aggregateByOwnership", \
	 .option = "aggregate_by_ownership", .place = USAGE_PLACE_BODY, \
	 .kind = USAGE_KIND_BOOLEAN, .echo = true, .absent_echo = "false", \
	 .narrows = 1.0}

#define UIPATH_ORG_PARAM \
	GUID_PARAM(NULL, "organizationId", "organization_id", USAGE_PLACE_PATH)

static const UsageParamDef by_folder_params[] = {
	UIPATH_ORG_PARAM,
	GUID_PARAM("tenantId", "tenantId", "tenant_id", USAGE_PLACE_BODY),
	UIPATH_PERIOD_PARAMS,
	UIPATH_CODE_PARAM,
	UIPATH_OWNERSHIP_PARAM,
};

static const UsageColumnDef by_folder_columns[] = {
	{"tenant_id", "pg_catalog.text", NULL,
	"Request parameter tenantId (echo; required): WHERE tenant_id = ... or IN (...)."},
	{"start_date", "pg_catalog.timestamptz", NULL,
	"Request parameter startDate (echo; required), sent as unix milliseconds: WHERE start_date = ..."},
	{"end_date", "pg_catalog.timestamptz", NULL,
	"Request parameter endDate (echo; required), sent as unix milliseconds: WHERE end_date = ..."},
	{"consumable_code", "pg_catalog.text", NULL,
	"Request parameter consumableCode (echo; required): WHERE consumable_code = ... or IN (...)."},
	{"aggregate_by_ownership", "pg_catalog.bool", NULL,
	"Request parameter aggregateByOwnership (echo; false when not sent)."},
	{"folder_key", "pg_catalog.text", NULL, "Response folderKey: the folder."},
	{"folder_name", "pg_catalog.text", NULL, "Response folderName."},
	{"parent_folder_key", "pg_catalog.text", NULL, "Response parentFolderKey, NULL for a root folder."},
	{"consumed_by_self", "pg_catalog.numeric", NULL, "Response consumedBySelf: units consumed in the folder."},
	{"process_count_self", "pg_catalog.int8", NULL, "Response processCountSelf: processes run in the folder."},
};

static const UsageParamDef daily_params[] = {
	UIPATH_ORG_PARAM,
	GUID_PARAM("tenantId", "tenantId", "tenant_id", USAGE_PLACE_BODY),
	{.key = "date", .api_name = "startDate", .api_name_end = "endDate",
		.place = USAGE_PLACE_BODY, .kind = USAGE_KIND_TIME_RANGE,
		.format = USAGE_TIME_EPOCH_MS, .whole_days = true, .required = true,
	.narrows = 1.0},
	UIPATH_CODE_PARAM,
	UIPATH_OWNERSHIP_PARAM,
	{.key = "folderKey", .api_name = "folderKeys", .place = USAGE_PLACE_BODY,
		.kind = USAGE_KIND_STRING_LIST, .echo = true, .narrows = 0.2},
};

static const UsageColumnDef daily_columns[] = {
	{"tenant_id", "pg_catalog.text", NULL,
	"Request parameter tenantId (echo; required): WHERE tenant_id = ... or IN (...)."},
	{"consumable_code", "pg_catalog.text", NULL,
	"Request parameter consumableCode (echo; required): WHERE consumable_code = ... or IN (...)."},
	{"aggregate_by_ownership", "pg_catalog.bool", NULL,
	"Request parameter aggregateByOwnership (echo; false when not sent)."},
	{"folder_key", "pg_catalog.text", NULL,
	"Request parameter folderKeys = [folder_key] (echo; NULL when not filtered): WHERE folder_key = ..."},
	{"date", "pg_catalog.date", NULL,
	"Response date (UTC day). Its range in WHERE becomes startDate/endDate; a lower bound is required."},
	{"service", "pg_catalog.text", NULL, "Response service."},
	{"consumed_amount", "pg_catalog.numeric", NULL, "Response consumedAmount."},
};

/*
 * The consumption summaries.  Their body takes startDate, endDate and
 * consumableCode only; the per-tenant one has the tenant in its path.  The
 * response is not published, so a row is the whole response object.
 */
static const UsageParamDef summary_params[] = {
	UIPATH_ORG_PARAM,
	UIPATH_PERIOD_PARAMS,
	UIPATH_CODE_PARAM,
};

static const UsageParamDef tenant_summary_params[] = {
	UIPATH_ORG_PARAM,
	GUID_PARAM("tenantId", "tenantId", "tenant_id", USAGE_PLACE_PATH),
	UIPATH_PERIOD_PARAMS,
	UIPATH_CODE_PARAM,
};

#define SUMMARY_PERIOD_COLUMNS \
	{"start_date", "pg_catalog.timestamptz", NULL, \
	 "Request parameter startDate (echo; required), sent as unix milliseconds: WHERE start_date = ..."}, \
	{"end_date", "pg_catalog.timestamptz", NULL, \
	 "Request parameter endDate (echo; required), sent as unix milliseconds: WHERE end_date = ..."}, \
	{"consumable_code", "pg_catalog.text", NULL, \
	 "Request parameter consumableCode (echo; required): WHERE consumable_code = ... or IN (...)."}, \
	{"summary", "pg_catalog.jsonb", "json_key '*'", \
	 "The whole response object. UiPath does not publish its shape: read its fields with jsonb operators."}

static const UsageColumnDef summary_columns[] = {
	SUMMARY_PERIOD_COLUMNS,
};

static const UsageColumnDef tenant_summary_columns[] = {
	{"tenant_id", "pg_catalog.text", NULL,
	"Request path parameter tenantId (echo; required): WHERE tenant_id = ... or IN (...), one request per tenant."},
	SUMMARY_PERIOD_COLUMNS,
};

#define lengthof_array(a) ((int) (sizeof(a) / sizeof((a)[0])))

#define UIPATH_USAGE_PATH "/lease_/api/usage/{organizationId}/tenants"
#define UIPATH_PERIOD_WHERE \
	"consumable_code = '...' AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00'"

static const UsageEndpoint endpoints[] = {
	{
		.name = "cloud_flow_connection_usage",
		.provider = USAGE_PROVIDER_AVEPOINT,
		.method = "GET",
		.path = "/smp/powerplatform/connectionusage/cloudflows",
		.rows = "/connectionUsageCloudFlows",
		.paging = USAGE_PAGING_NEXTLINK,
		.next_link = "/nextLink",
		.page_size_param = "top",
		.params = cloudflow_params,
		.nparams = lengthof_array(cloudflow_params),
		.columns = cloudflow_columns,
		.ncolumns = lengthof_array(cloudflow_columns),
		.rows_per_request = 25000.0,
		.comment = "AvePoint: connection usage of Power Automate cloud flows (GET /smp/powerplatform/connectionusage/cloudflows).",
		.example_where = "flow_id = '...'"
	},
	{
		.name = "consumption_by_folder",
		.provider = USAGE_PROVIDER_UIPATH,
		.method = "POST",
		.path = UIPATH_USAGE_PATH "/consumption-by-folder",
		.rows = "/items",
		.paging = USAGE_PAGING_NONE,
		.params = by_folder_params,
		.nparams = lengthof_array(by_folder_params),
		.columns = by_folder_columns,
		.ncolumns = lengthof_array(by_folder_columns),
		.rows_per_request = 50.0,
		.comment = "UiPath: consumption by folder for one tenant, date range and consumable (POST .../tenants/consumption-by-folder).",
		.example_where = "tenant_id = '...' AND " UIPATH_PERIOD_WHERE
	},
	{
		.name = "daily_consumption_by_service",
		.provider = USAGE_PROVIDER_UIPATH,
		.method = "POST",
		.path = UIPATH_USAGE_PATH "/daily-consumption-by-service",
		.rows = "/items",
		.paging = USAGE_PAGING_NONE,
		.params = daily_params,
		.nparams = lengthof_array(daily_params),
		.columns = daily_columns,
		.ncolumns = lengthof_array(daily_columns),
		.rows_per_request = 300.0,
		.comment = "UiPath: daily consumption by service for one tenant and consumable (POST .../tenants/daily-consumption-by-service).",
		.example_where = "tenant_id = '...' AND consumable_code = '...' AND date >= current_date - 30"
	},
	{
		.name = "consumption_summary",
		.provider = USAGE_PROVIDER_UIPATH,
		.method = "POST",
		.path = UIPATH_USAGE_PATH "/consumption-summary",
		.rows = "",
		.paging = USAGE_PAGING_NONE,
		.params = summary_params,
		.nparams = lengthof_array(summary_params),
		.columns = summary_columns,
		.ncolumns = lengthof_array(summary_columns),
		.rows_per_request = 1.0,
		.comment = "UiPath: consumption summary of the organization, all tenants, for one date range and consumable (POST .../tenants/consumption-summary); the response shape is not published.",
		.example_where = UIPATH_PERIOD_WHERE
	},
	{
		.name = "tenant_consumption_summary",
		.provider = USAGE_PROVIDER_UIPATH,
		.method = "POST",
		.path = UIPATH_USAGE_PATH "/{tenantId}/consumption-summary",
		.rows = "",
		.paging = USAGE_PAGING_NONE,
		.params = tenant_summary_params,
		.nparams = lengthof_array(tenant_summary_params),
		.columns = tenant_summary_columns,
		.ncolumns = lengthof_array(tenant_summary_columns),
		.rows_per_request = 1.0,
		.comment = "UiPath: consumption summary of one tenant for one date range and consumable (POST .../tenants/{tenantId}/consumption-summary); the response shape is not published.",
		.example_where = "tenant_id = '...' AND " UIPATH_PERIOD_WHERE
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

/*
 * The built-in parameter of a provider's endpoints with this name in the
 * request (such as tenant, tenantId), or NULL: a declared parameter of the
 * same name takes its binding option and its GUID check.
 */
const UsageParamDef *
usage_provider_param(UsageProvider provider, const char *api_name)
{
	for (int i = 0; i < lengthof_array(endpoints); i++)
	{
		if (endpoints[i].provider != provider)
			continue;
		for (int p = 0; p < endpoints[i].nparams; p++)
		{
			const UsageParamDef *def = &endpoints[i].params[p];

			if (def->kind != USAGE_KIND_TIME_RANGE &&
				strcmp(def->api_name, api_name) == 0)
				return def;
		}
	}
	return NULL;
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
