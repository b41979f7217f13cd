/*-------------------------------------------------------------------------
 *
 * option.c
 *		  Options of usage_fdw: validation at CREATE/ALTER time, and the
 *		  merged options (server, table, user mapping) of one scan.
 *
 * Every option is described once, in usage_options[] below: where it may
 * appear, and how its value is checked.  Secrets are accepted only in user
 * mappings.  Checks that need two objects at once (a table's endpoint
 * against its server's provider) are made by the event trigger in ddl.c.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <stddef.h>

#include "access/reloptions.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "usage_fdw.h"

PG_FUNCTION_INFO_V1(usage_fdw_validator);

typedef enum UsageOptionType
{
	OPT_PROVIDER,
	OPT_URL,
	OPT_STRING,
	OPT_INT,
	OPT_BOOL,
	OPT_ENDPOINT,
	OPT_SECRET,
	OPT_JSON_KEY,
	OPT_DECLARATION,			/* a declared endpoint's table option */
	OPT_DECLARATION_COLUMN		/* a declared endpoint's column option */
} UsageOptionType;

/* where an option may appear */
#define CTX_SERVER	0x01
#define CTX_TABLE	0x02
#define CTX_USER	0x04
#define CTX_COLUMN	0x08

typedef struct UsageOptionDef
{
	const char *name;
	int			contexts;
	UsageOptionType type;
	int			min;			/* OPT_INT bounds */
	int			max;
	int			field;			/* offset of its field in UsageOptions, or
								 * NO_FIELD */
} UsageOptionDef;

#define NO_FIELD	(-1)
#define FIELD(f)	((int) offsetof(UsageOptions, f))

/*
 * The options that are not request parameters.  The parameter bindings
 * (tenant_id, tenant, ...) are not listed here: they come from the
 * endpoint catalogue (see find_option).
 */
static const UsageOptionDef usage_options[] = {
	{"provider", CTX_SERVER, OPT_PROVIDER, 0, 0, FIELD(provider)},
	{"base_url", CTX_SERVER, OPT_URL, 0, 0, FIELD(base_url)},
	{"organization_id", CTX_SERVER, OPT_STRING, 0, 0, FIELD(organization_id)},
	{"token_url", CTX_SERVER, OPT_URL, 0, 0, FIELD(token_url)},
	{"scope", CTX_SERVER, OPT_STRING, 0, 0, FIELD(scope)},
	{"page_size", CTX_SERVER | CTX_TABLE, OPT_INT, 1, 1000, FIELD(page_size)},
	{"max_concurrency", CTX_SERVER | CTX_TABLE, OPT_INT, 1, 64, FIELD(max_concurrency)},
	{"async_capable", CTX_SERVER | CTX_TABLE, OPT_BOOL, 0, 0, FIELD(async_capable)},
	{"max_pages", CTX_SERVER | CTX_TABLE, OPT_INT, 1, USAGE_MAX_PAGES_PER_CALL, FIELD(max_pages)},
	{"batch_size", CTX_SERVER | CTX_TABLE, OPT_INT, 1, 10000, FIELD(batch_size)},
	{"timeout_ms", CTX_SERVER, OPT_INT, 1, 3600000, FIELD(timeout_ms)},
	{"connect_timeout_ms", CTX_SERVER, OPT_INT, 1, 3600000, FIELD(connect_timeout_ms)},
	{"max_retries", CTX_SERVER, OPT_INT, 0, 100, FIELD(max_retries)},
	{"ca_file", CTX_SERVER, OPT_STRING, 0, 0, FIELD(ca_file)},
	{"proxy", CTX_SERVER, OPT_STRING, 0, 0, FIELD(proxy)},
	{"endpoint", CTX_TABLE, OPT_ENDPOINT, 0, 0, FIELD(endpoint)},
	/* a declared endpoint (declare.c), instead of "endpoint" */
	{"path", CTX_TABLE, OPT_DECLARATION, 0, 0, NO_FIELD},
	{"method", CTX_TABLE, OPT_DECLARATION, 0, 0, NO_FIELD},
	{"rows", CTX_TABLE, OPT_DECLARATION, 0, 0, NO_FIELD},
	{"paging", CTX_TABLE, OPT_DECLARATION, 0, 0, NO_FIELD},
	{"next_link", CTX_TABLE, OPT_DECLARATION, 0, 0, NO_FIELD},
	{"page_size_param", CTX_TABLE, OPT_DECLARATION, 0, 0, NO_FIELD},
	/* credentials: read by usage_get_user_options */
	{"access_token", CTX_USER, OPT_SECRET, 0, 0, NO_FIELD},
	{"client_id", CTX_USER, OPT_STRING, 0, 0, NO_FIELD},
	{"client_secret", CTX_USER, OPT_SECRET, 0, 0, NO_FIELD},
	{"client_certificate", CTX_USER, OPT_STRING, 0, 0, NO_FIELD},
	{"client_key", CTX_USER, OPT_SECRET, 0, 0, NO_FIELD},
	{"client_key_passphrase", CTX_USER, OPT_SECRET, 0, 0, NO_FIELD},
	/* columns: read by usage_column_json_key, and declare.c */
	{"json_key", CTX_COLUMN, OPT_JSON_KEY, 0, 0, NO_FIELD},
	{"param", CTX_COLUMN, OPT_DECLARATION_COLUMN, 0, 0, NO_FIELD},
	{"required", CTX_COLUMN, OPT_DECLARATION_COLUMN, 0, 0, NO_FIELD},
	{"param_from", CTX_COLUMN, OPT_DECLARATION_COLUMN, 0, 0, NO_FIELD},
	{"param_to", CTX_COLUMN, OPT_DECLARATION_COLUMN, 0, 0, NO_FIELD},
	{"param_format", CTX_COLUMN, OPT_DECLARATION_COLUMN, 0, 0, NO_FIELD},
};

#define N_USAGE_OPTIONS ((int) lengthof(usage_options))

static int
context_of_catalog(Oid catalog)
{
	switch (catalog)
	{
		case ForeignServerRelationId:
			return CTX_SERVER;
		case ForeignTableRelationId:
			return CTX_TABLE;
		case UserMappingRelationId:
			return CTX_USER;
		case AttributeRelationId:
			return CTX_COLUMN;
		default:
			return 0;
	}
}

static const char *
context_name(int ctx)
{
	switch (ctx)
	{
		case CTX_SERVER:
			return "a server";
		case CTX_TABLE:
			return "a foreign table";
		case CTX_USER:
			return "a user mapping";
		case CTX_COLUMN:
			return "a column";
		default:
			return "a foreign-data wrapper";
	}
}

/*
 * The definition of an option, into *def: one of usage_options[], or a
 * parameter binding of the endpoint catalogue (a server or table option, a
 * boolean for a boolean parameter).  False for an unknown name.
 */
static bool
find_option(const char *name, UsageOptionDef *def)
{
	const UsageParamDef *param;

	for (int i = 0; i < N_USAGE_OPTIONS; i++)
	{
		if (strcmp(usage_options[i].name, name) == 0)
		{
			*def = usage_options[i];
			return true;
		}
	}
	param = usage_find_binding(name, NULL);
	if (param == NULL)
		return false;
	def->name = param->option;
	def->contexts = CTX_SERVER | CTX_TABLE;
	def->type = param->kind == USAGE_KIND_BOOLEAN ? OPT_BOOL : OPT_STRING;
	def->min = def->max = 0;
	def->field = NO_FIELD;
	return true;
}

static char *
valid_option_names(int ctx)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < N_USAGE_OPTIONS; i++)
	{
		if (!(usage_options[i].contexts & ctx))
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, usage_options[i].name);
	}
	if (ctx & (CTX_SERVER | CTX_TABLE))
	{
		ListCell   *lc;

		foreach(lc, usage_binding_options())
			appendStringInfo(&buf, ", %s", (char *) lfirst(lc));
	}
	return buf.data;
}

/*
 * Parse an integer option value strictly: digits only, within bounds.
 */
static bool
parse_int_option(const char *value, int *result)
{
	const char *p = value;
	long		v = 0;

	while (isspace((unsigned char) *p))
		p++;
	if (*p == '+')
		p++;
	if (!isdigit((unsigned char) *p))
		return false;
	for (; isdigit((unsigned char) *p); p++)
	{
		v = v * 10 + (*p - '0');
		if (v > INT_MAX)
			return false;
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '\0')
		return false;
	*result = (int) v;
	return true;
}

static bool
url_is_http(const char *value)
{
	return (pg_strncasecmp(value, "http://", 7) == 0 && value[7] != '\0') ||
		(pg_strncasecmp(value, "https://", 8) == 0 && value[8] != '\0');
}

/*
 * Check one option's value; ereport on a bad one.
 */
static void
check_option_value(const UsageOptionDef *def, DefElem *d)
{
	char	   *value = defGetString(d);
	int			ival;
	bool		bval;

	switch (def->type)
	{
		case OPT_PROVIDER:
			{
				UsageProvider p;

				if (!usage_provider_from_name(value, &p))
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
							 errmsg("invalid value for option \"provider\": \"%s\"", value),
							 errhint("Valid providers are: uipath, avepoint.")));
				break;
			}
		case OPT_URL:
			if (!url_is_http(value))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"", def->name, value),
						 errhint("Give an absolute http:// or https:// URL, such as https://cloud.uipath.com.")));
			break;
		case OPT_INT:
			if (!parse_int_option(value, &ival) || ival < def->min || ival > def->max)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"", def->name, value),
						 errhint("Valid values are integers from %d to %d.", def->min, def->max)));
			break;
		case OPT_BOOL:
			if (!parse_bool(value, &bval))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"", def->name, value),
						 errhint("Valid values are true and false.")));
			break;
		case OPT_ENDPOINT:
			if (usage_find_endpoint(value) == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"endpoint\": \"%s\"", value),
						 errhint("Valid endpoints are: %s.",
								 usage_endpoint_names(USAGE_PROVIDER_UIPATH, true))));
			break;
		case OPT_STRING:
		case OPT_SECRET:
		case OPT_JSON_KEY:
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"%s\" must not be empty", def->name)));
			break;
		case OPT_DECLARATION:
			usage_check_declaration_option(d);
			break;
		case OPT_DECLARATION_COLUMN:
			usage_check_declaration_column_option(d);
			break;
	}
}

static DefElem *
find_defelem(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, name) == 0)
			return d;
	}
	return NULL;
}

/*
 * An option that sets a request parameter (a binding, or organization_id)
 * belongs to the provider whose endpoints have that parameter.
 */
static void
check_param_option_provider(const char *optname, UsageProvider provider,
							const char *where)
{
	UsageProvider owner;

	if (usage_option_provider(optname, &owner) && owner != provider)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"%s\" is not valid for %s of provider \"%s\"",
						optname, where, usage_provider_name(provider)),
				 errhint("It is an option of provider \"%s\".",
						 usage_provider_name(owner))));
}

/* Check one option: known, allowed where it is given, with a valid value. */
static void
check_option(DefElem *d, int ctx)
{
	UsageOptionDef def;

	if (!find_option(d->defname, &def) || ctx == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\"", d->defname),
				 ctx == 0 ?
				 errhint("The foreign-data wrapper usage_fdw takes no options.") :
				 errhint("Valid options for %s are: %s.",
						 context_name(ctx), valid_option_names(ctx))));

	if (!(def.contexts & ctx))
	{
		if (def.contexts == CTX_USER)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"%s\" is only allowed on a user mapping", d->defname),
					 errhint("Credentials belong in a user mapping: CREATE USER MAPPING FOR CURRENT_USER SERVER ... OPTIONS (%s '...').",
							 d->defname)));
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\" for %s", d->defname, context_name(ctx)),
				 errhint("Valid options for %s are: %s.",
						 context_name(ctx), valid_option_names(ctx))));
	}

	check_option_value(&def, d);
}

/* A server: a provider, the options of that provider, its required ones. */
static void
check_server_options(List *options)
{
	DefElem    *prov = find_defelem(options, "provider");
	UsageProvider provider;
	ListCell   *lc;

	if (prov == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("option \"provider\" is required for a usage_fdw server"),
				 errhint("Valid providers are: uipath, avepoint.")));
	(void) usage_provider_from_name(defGetString(prov), &provider);

	foreach(lc, options)
		check_param_option_provider(((DefElem *) lfirst(lc))->defname,
									provider, "a server");
	if (!superuser())
		usage_check_server_destinations(options, provider);

	if (provider == USAGE_PROVIDER_UIPATH &&
		find_defelem(options, "organization_id") == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("option \"organization_id\" is required for provider \"uipath\""),
				 errhint("Give the organization GUID of your UiPath organization, as in OPTIONS (provider 'uipath', organization_id '11111111-1111-1111-1111-111111111111').")));
}

/* Is the option one of a declared endpoint's table options? */
static bool
is_declaration_option(const char *name)
{
	UsageOptionDef def;

	return find_option(name, &def) && def.type == OPT_DECLARATION;
}

/*
 * A foreign table: a built-in endpoint with bindings of its parameters, or
 * a declared endpoint (path); the bindings of a declaration are checked
 * against its columns when it is built (declare.c).
 */
static void
check_table_options(List *options)
{
	DefElem    *ep_opt = find_defelem(options, "endpoint");
	bool		declared = find_defelem(options, "path") != NULL;
	const UsageEndpoint *ep;
	ListCell   *lc;

	if (ep_opt == NULL && !declared)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("option \"endpoint\" or \"path\" is required for a usage_fdw foreign table"),
				 errhint("Valid endpoints are: %s.  Or declare one with the options path and rows.",
						 usage_endpoint_names(USAGE_PROVIDER_UIPATH, true))));
	if (ep_opt != NULL && declared)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("options \"endpoint\" and \"path\" cannot be given together"),
				 errhint("Name a built-in endpoint, or declare one with path and rows.")));
	if (declared)
		return;
	ep = usage_find_endpoint(defGetString(ep_opt));

	foreach(lc, options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (is_declaration_option(d->defname))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"%s\" is only valid on a foreign table that declares its endpoint",
							d->defname),
					 errhint("Endpoint \"%s\" is built in; drop option \"%s\", or replace endpoint with path.",
							 ep->name, d->defname)));
		check_param_option_provider(d->defname, ep->provider,
									"a foreign table");
		if (usage_find_binding(d->defname, NULL) != NULL &&
			usage_find_param_by_option(ep, d->defname) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"%s\" is not a parameter of endpoint \"%s\"",
							d->defname, ep->name)));
	}
}

/*
 * A user mapping: a token; or a client id with its secret; or a client id
 * with a certificate and its key (whose match is checked here), never two
 * of these at once.
 */
static void
check_user_options(List *options)
{
	DefElem    *cert = find_defelem(options, "client_certificate");
	DefElem    *key = find_defelem(options, "client_key");
	DefElem    *pass = find_defelem(options, "client_key_passphrase");
	bool		has_token = find_defelem(options, "access_token") != NULL;
	bool		has_id = find_defelem(options, "client_id") != NULL;
	bool		has_secret = find_defelem(options, "client_secret") != NULL;
	int			ways = has_token + has_secret + (cert != NULL || key != NULL);

	if (ways > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("give one way to log in: \"access_token\", or \"client_id\" with \"client_secret\", or \"client_id\" with \"client_certificate\" and \"client_key\"")));
	if (has_secret != (has_id && !cert && !key))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("options \"client_id\" and \"client_secret\" must be given together")));
	if ((cert != NULL || key != NULL) && !(has_id && cert && key))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("options \"client_id\", \"client_certificate\" and \"client_key\" must be given together")));
	if (pass != NULL && key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("option \"client_key_passphrase\" needs \"client_key\"")));
	if (cert != NULL)
		usage_check_client_certificate(defGetString(cert), defGetString(key),
									   pass ? defGetString(pass) : NULL);
}

/*
 * Whether a command's options may hold a secret: those of a user mapping,
 * and elsewhere a secret, or an option this wrapper does not know (a
 * misspelt secret, a secret's name in capitals).
 */
static bool
options_may_hold_secret(List *options, int ctx)
{
	ListCell   *lc;

	if (ctx == CTX_USER)
		return true;
	foreach(lc, options)
	{
		UsageOptionDef def;

		if (!find_option(((DefElem *) lfirst(lc))->defname, &def) ||
			def.type == OPT_SECRET)
			return true;
	}
	return false;
}

/*
 * Error context callback of the validator: a message about a command that
 * may hold a secret is logged without its STATEMENT line, which would show
 * the secret whole (log_min_error_statement).
 */
static void
hide_statement(void *arg)
{
	errhidestmt(true);
}

/*
 * Validate the options given in a CREATE or ALTER command for a wrapper,
 * server, user mapping, foreign table or column.  ALTER passes the complete
 * resulting option list, so "required" checks are made here too.  When the
 * options may hold a secret, a message raised here is logged without the
 * statement.
 */
Datum
usage_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	int			ctx = context_of_catalog(PG_GETARG_OID(1));
	ErrorContextCallback hide;
	ListCell   *lc;

	hide.previous = error_context_stack;
	hide.callback = hide_statement;
	hide.arg = NULL;
	if (options_may_hold_secret(options, ctx))
		error_context_stack = &hide;

	foreach(lc, options)
		check_option((DefElem *) lfirst(lc), ctx);

	/* options that depend on each other */
	if (ctx == CTX_SERVER)
		check_server_options(options);
	else if (ctx == CTX_TABLE)
		check_table_options(options);
	else if (ctx == CTX_USER)
		check_user_options(options);

	/* GUIDs last: a misplaced option is better told as such */
	foreach(lc, options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if ((ctx == CTX_SERVER || ctx == CTX_TABLE) &&
			usage_option_is_guid(d->defname))
			usage_check_guid(defGetString(d),
							 psprintf("option \"%s\"", d->defname));
	}

	error_context_stack = hide.previous;
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 *		The merged options of one scan
 * ----------------------------------------------------------------
 */

static void
set_param_default(List **defaults, DefElem *d)
{
	ListCell   *lc;

	foreach(lc, *defaults)
	{
		DefElem    *old = (DefElem *) lfirst(lc);

		if (strcmp(old->defname, d->defname) == 0)
		{
			lfirst(lc) = d;
			return;
		}
	}
	*defaults = lappend(*defaults, d);
}

/*
 * Apply a list of server or table options to opts: each known option sets
 * its field, a parameter binding joins the bindings (the table's replaces
 * the server's).  The values were checked by the validator.
 */
static void
apply_options(UsageOptions *opts, List *options)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);
		char	   *v = defGetString(d);
		UsageOptionDef def;
		char	   *field;

		if (!find_option(d->defname, &def))
			continue;
		if (def.field == NO_FIELD)
		{
			if (usage_find_binding(d->defname, NULL) != NULL)
				set_param_default(&opts->param_defaults, d);
			continue;
		}
		field = (char *) opts + def.field;
		switch (def.type)
		{
			case OPT_PROVIDER:
				(void) usage_provider_from_name(v, (UsageProvider *) field);
				break;
			case OPT_INT:
				(void) parse_int_option(v, (int *) field);
				break;
			case OPT_BOOL:
				(void) parse_bool(v, (bool *) field);
				break;
			case OPT_ENDPOINT:
				*(const UsageEndpoint **) field = usage_find_endpoint(v);
				break;
			case OPT_URL:
			case OPT_STRING:
			case OPT_SECRET:
			case OPT_JSON_KEY:
			case OPT_DECLARATION:
			case OPT_DECLARATION_COLUMN:
				*(char **) field = v;
				break;
		}
	}
}

static char *
strip_trailing_slashes(char *url)
{
	int			len = strlen(url);

	while (len > 0 && url[len - 1] == '/')
		url[--len] = '\0';
	return url;
}

/*
 * The options of a foreign table: server options, overridden by the
 * table's, plus the documented defaults.  Credentials are not looked up
 * here (see usage_get_user_options).
 */
UsageOptions *
usage_get_options(Oid foreigntableid)
{
	ForeignTable *table = GetForeignTable(foreigntableid);
	ForeignServer *server = GetForeignServer(table->serverid);
	UsageOptions *opts = palloc0(sizeof(UsageOptions));

	opts->server_name = pstrdup(server->servername);
	opts->table_name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(foreigntableid)),
												  get_rel_name(foreigntableid));
	opts->page_size = 1000;
	opts->max_concurrency = 8;
	opts->async_capable = true;
	opts->max_pages = 100000;
	opts->batch_size = 100;
	opts->timeout_ms = 30000;
	opts->connect_timeout_ms = 10000;
	opts->max_retries = 5;
	opts->umid = InvalidOid;

	apply_options(opts, server->options);
	apply_options(opts, table->options);
	if (opts->endpoint == NULL && usage_table_is_declared(table->options))
		opts->endpoint = usage_declared_endpoint(foreigntableid, opts->provider,
												 table->options);

	if (opts->base_url == NULL)
		opts->base_url = pstrdup(opts->provider == USAGE_PROVIDER_UIPATH ?
								 "https://cloud.uipath.com" :
								 "https://graph-us.avepointonlineservices.com");
	opts->base_url = strip_trailing_slashes(pstrdup(opts->base_url));
	if (opts->token_url == NULL)
	{
		if (opts->provider == USAGE_PROVIDER_UIPATH)
			opts->token_url = psprintf("%s/identity_/connect/token", opts->base_url);
		else
			opts->token_url = pstrdup("https://identity.avepointonlineservices.com/connect/token");
	}
	if (opts->scope == NULL && opts->provider == USAGE_PROVIDER_AVEPOINT)
		opts->scope = pstrdup("enpower.data.read.all");

	if (opts->endpoint == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("foreign table %s has no \"endpoint\" option", opts->table_name)));
	if (opts->endpoint->provider != opts->provider)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("endpoint \"%s\" of foreign table %s belongs to provider \"%s\", but server \"%s\" is of provider \"%s\"",
						opts->endpoint->name, opts->table_name,
						usage_provider_name(opts->endpoint->provider),
						opts->server_name, usage_provider_name(opts->provider)),
				 errhint("Endpoints of provider \"%s\" are: %s.",
						 usage_provider_name(opts->provider),
						 usage_endpoint_names(opts->provider, false))));
	return opts;
}

/*
 * Look up the user mapping for (userid, serverid), falling back to PUBLIC,
 * and copy its credentials into opts.  A missing mapping or one without
 * credentials is SQLSTATE 28000 with a hint; no secret is ever printed.
 */
void
usage_get_user_options(UsageOptions *opts, Oid serverid, Oid userid)
{
	HeapTuple	tp;
	UserMapping *um;
	ListCell   *lc;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER,
						 ObjectIdGetDatum(userid), ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER,
							 ObjectIdGetDatum(InvalidOid), ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("no user mapping for user \"%s\" on server \"%s\"",
						GetUserNameFromId(userid, true) ? GetUserNameFromId(userid, true) : "?",
						opts->server_name),
				 errhint("Create one with the API credentials: CREATE USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (access_token '...'), or OPTIONS (client_id '...', client_secret '...').",
						 quote_identifier(opts->server_name))));
	ReleaseSysCache(tp);

	um = GetUserMapping(userid, serverid);
	opts->umid = um->umid;
	foreach(lc, um->options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, "access_token") == 0)
			opts->access_token = defGetString(d);
		else if (strcmp(d->defname, "client_id") == 0)
			opts->client_id = defGetString(d);
		else if (strcmp(d->defname, "client_secret") == 0)
			opts->client_secret = defGetString(d);
		else if (strcmp(d->defname, "client_certificate") == 0)
			opts->client_certificate = defGetString(d);
		else if (strcmp(d->defname, "client_key") == 0)
			opts->client_key = defGetString(d);
		else if (strcmp(d->defname, "client_key_passphrase") == 0)
			opts->client_key_passphrase = defGetString(d);
	}

	if (opts->access_token == NULL && opts->client_id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("user mapping for server \"%s\" has no credentials", opts->server_name),
				 errhint("ALTER USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (ADD access_token '...'), or ADD client_id and client_secret, or client_id, client_certificate and client_key.",
						 quote_identifier(opts->server_name))));
}

/*
 * The default value of a request parameter (table over server), or NULL.
 */
const char *
usage_param_default(UsageOptions *opts, const UsageParamDef *param)
{
	ListCell   *lc;

	if (param->option == NULL)
		return NULL;
	if (strcmp(param->option, "organization_id") == 0)
		return opts->organization_id;
	foreach(lc, opts->param_defaults)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, param->option) == 0)
			return defGetString(d);
	}
	return NULL;
}

/*
 * Is value a GUID written as the vendors do:
 * xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hexadecimal digits of either case?
 */
bool
usage_is_guid(const char *value)
{
	static const int groups[] = {8, 4, 4, 4, 12};
	const char *p = value;

	for (int g = 0; g < (int) lengthof(groups); g++)
	{
		if (g > 0 && *p++ != '-')
			return false;
		for (int i = 0; i < groups[g]; i++, p++)
		{
			if (!isxdigit((unsigned char) *p))
				return false;
		}
	}
	return *p == '\0';
}

/*
 * usage_check_guid
 *		Refuse a value of a parameter that the vendor documents as a GUID,
 *		when it is not one: the API would answer a typo with zero rows.
 *
 * what names where the value came from, e.g. option "organization_id" or
 * column "tenant_id".
 */
void
usage_check_guid(const char *value, const char *what)
{
	if (usage_is_guid(value))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid value for %s: \"%s\"", what, value),
			 errdetail("The API takes a GUID here; it would answer any other value with no rows."),
			 errhint("Give a GUID of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hexadecimal digits).")));
}

