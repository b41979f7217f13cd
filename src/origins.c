/*-------------------------------------------------------------------------
 *
 * origins.c
 *		  Who may point a server where: a server created or altered by a
 *		  role that is not a superuser may name only the vendors'
 *		  documented https origins in base_url and token_url (and those a
 *		  superuser lists in usage_fdw.allowed_origins), and no ca_file or
 *		  proxy; a superuser may set anything.  So granting the wrapper does
 *		  not turn the database host into an HTTP client for arbitrary
 *		  addresses.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "usage_fdw.h"

/* ----------------------------------------------------------------
 *		Who may point a server where
 * ----------------------------------------------------------------
 */

/* usage_fdw.allowed_origins: more origins for servers of non-superusers */
static char *allowed_origins = NULL;

/*
 * The vendors' documented https origins, per provider and use.  UiPath's
 * token endpoint is on the API's own origin; a dedicated UiPath cloud is
 * https://NAME.dedicated.uipath.com (see vendor_origin_allowed).
 */
typedef struct VendorOrigin
{
	UsageProvider provider;
	bool		token;			/* a token_url origin, not a base_url one */
	const char *origin;
} VendorOrigin;

static const VendorOrigin vendor_origins[] = {
	{USAGE_PROVIDER_UIPATH, false, "https://cloud.uipath.com"},
	{USAGE_PROVIDER_UIPATH, false, "https://govcloud.uipath.us"},
	{USAGE_PROVIDER_UIPATH, true, "https://cloud.uipath.com"},
	{USAGE_PROVIDER_UIPATH, true, "https://govcloud.uipath.us"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-us.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-au.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-ca.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-de.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-fr.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-jp.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-kr.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-ne.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-sg.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-ch.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-uk.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-we.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, false, "https://graph-gov.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, true, "https://identity.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, true, "https://identity-gov.avepointonlineservices.com"},
	{USAGE_PROVIDER_AVEPOINT, true, "https://identity-aos2.avepointonlineservices.com"},
};

#define DEDICATED_UIPATH_SUFFIX ".dedicated.uipath.com:443"

/*
 * Is origin (as usage_url_origin() writes it: lower case, explicit port)
 * https://NAME.dedicated.uipath.com, NAME one DNS label?
 */
static bool
is_dedicated_uipath(const char *origin)
{
	size_t		len = strlen(origin);
	size_t		slen = strlen(DEDICATED_UIPATH_SUFFIX);
	const char *label = origin + strlen("https://");

	if (strncmp(origin, "https://", 8) != 0 || len <= 8 + slen ||
		strcmp(origin + len - slen, DEDICATED_UIPATH_SUFFIX) != 0)
		return false;
	for (const char *p = label; p < origin + len - slen; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	}
	return true;
}

/*
 * Is the origin (normalized by usage_url_origin) listed in
 * usage_fdw.allowed_origins?  Entries that do not parse were refused when
 * the setting was made (check_allowed_origins).
 */
static bool
listed_in_allowed_origins(const char *origin)
{
	char	   *copy;
	List	   *items;
	ListCell   *lc;
	bool		found = false;

	if (allowed_origins == NULL || allowed_origins[0] == '\0')
		return false;
	copy = pstrdup(allowed_origins);
	if (!SplitGUCList(copy, ',', &items))
		return false;
	foreach(lc, items)
	{
		char	   *entry = usage_url_origin((char *) lfirst(lc));

		if (entry != NULL && strcmp(entry, origin) == 0)
			found = true;
	}
	return found;
}

/*
 * May a role that is not a superuser point a server of provider at url,
 * as its base_url (token = false) or token_url?  The origin is compared
 * exactly: scheme, host (case-insensitive) and port (with the scheme's
 * default); the path does not matter.
 */
static bool
vendor_origin_allowed(const char *url, UsageProvider provider, bool token)
{
	char	   *origin = usage_url_origin(url);

	if (origin == NULL)
		return false;
	for (int i = 0; i < (int) lengthof(vendor_origins); i++)
	{
		const VendorOrigin *v = &vendor_origins[i];

		if (v->provider == provider && v->token == token &&
			strcmp(usage_url_origin(v->origin), origin) == 0)
			return true;
	}
	if (provider == USAGE_PROVIDER_UIPATH && is_dedicated_uipath(origin))
		return true;
	return listed_in_allowed_origins(origin);
}

/* The documented origins of a provider's base_url or token_url, for HINTs. */
static char *
vendor_origin_names(UsageProvider provider, bool token)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < (int) lengthof(vendor_origins); i++)
	{
		if (vendor_origins[i].provider != provider ||
			vendor_origins[i].token != token)
			continue;
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
						 vendor_origins[i].origin);
	}
	if (provider == USAGE_PROVIDER_UIPATH)
		appendStringInfoString(&buf, ", https://NAME.dedicated.uipath.com");
	return buf.data;
}

/*
 * check_server_destinations
 *		SPEC "Who may point a server where": the options of a server created
 *		or altered by a role that is not a superuser.
 *
 * base_url and token_url may name only the provider's documented https
 * origins or one that a superuser listed in usage_fdw.allowed_origins;
 * ca_file and proxy may not be set at all.  A token_url left to its default
 * is fine: UiPath's default is on base_url's origin, AvePoint's is
 * documented.  ALTER passes the whole resulting list, so an option a
 * superuser set is refused too when such a role alters the server.
 */
void
usage_check_server_destinations(List *options, UsageProvider provider)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);
		bool		token = strcmp(d->defname, "token_url") == 0;

		if (strcmp(d->defname, "ca_file") == 0 ||
			strcmp(d->defname, "proxy") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only a superuser may set option \"%s\" of a usage_fdw server",
							d->defname),
					 errhint("Ask a superuser to create or alter the server.")));
		if ((token || strcmp(d->defname, "base_url") == 0) &&
			!vendor_origin_allowed(defGetString(d), provider, token))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only a superuser may point option \"%s\" of a usage_fdw server at \"%s\"",
							d->defname, defGetString(d)),
					 errdetail("A role that is not a superuser may use the documented origins of provider \"%s\": %s.",
							   usage_provider_name(provider),
							   vendor_origin_names(provider, token)),
					 errhint("A superuser can allow more origins with the setting usage_fdw.allowed_origins.")));
	}
}

/*
 * GUC check hook of usage_fdw.allowed_origins: a comma-separated list of
 * scheme://host[:port], http or https, nothing else (no path, query or
 * user name).
 */
static bool
check_allowed_origins(char **newval, void **extra, GucSource source)
{
	char	   *copy = pstrdup(*newval);
	List	   *items;
	ListCell   *lc;

	if (!SplitGUCList(copy, ',', &items))
	{
		GUC_check_errdetail("The list syntax is invalid.");
		return false;
	}
	foreach(lc, items)
	{
		const char *item = (const char *) lfirst(lc);
		const char *rest = NULL;

		if (pg_strncasecmp(item, "https://", 8) == 0)
			rest = item + 8;
		else if (pg_strncasecmp(item, "http://", 7) == 0)
			rest = item + 7;
		if (rest == NULL || rest[0] == '\0' || strpbrk(rest, "/?#@") != NULL ||
			usage_url_origin(item) == NULL)
		{
			GUC_check_errdetail("\"%s\" is not an origin of the form scheme://host[:port].",
								item);
			return false;
		}
	}
	return true;
}

/* Called from _PG_init: the settings of this module. */
void
usage_option_init(void)
{
	DefineCustomStringVariable("usage_fdw.allowed_origins",
							   "Origins that servers of roles that are not superusers may use.",
							   "A comma-separated list of scheme://host[:port]: besides the vendors' "
							   "documented https origins, the base_url and token_url of a server "
							   "created or altered by a role that is not a superuser may name these.",
							   &allowed_origins,
							   "",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   check_allowed_origins, NULL, NULL);
}

