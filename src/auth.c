/*-------------------------------------------------------------------------
 *
 * auth.c
 *		  Bearer tokens for usage_fdw's requests.
 *
 * A user mapping holds either an access_token, sent as is, or a client_id
 * and client_secret for the OAuth2 client-credentials grant against the
 * server's token_url.  Tokens obtained that way are cached per backend and
 * per user mapping until shortly before they expire; a 401 from the API
 * discards the cached token (usage_auth_invalidate) so the next call fetches
 * a new one.  Neither the secret nor a token ever appears in a message.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "usage_fdw.h"

typedef struct CachedToken
{
	Oid			umid;
	char	   *token_url;
	char	   *client_id;
	char	   *scope;
	uint32		secret_hash;	/* the secret itself is not kept here */
	char	   *access_token;
	TimestampTz refresh_at;		/* fetch a new one from this time on */
	struct CachedToken *next;
} CachedToken;

static CachedToken *token_cache = NULL;

/* lifetime assumed without expires_in, and the longest one believed */
#define DEFAULT_EXPIRES_IN	3600
#define MAX_EXPIRES_IN		86400

static uint32
hash_secret(const char *s)
{
	/* FNV-1a: only to notice that the secret changed */
	uint32		h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

static bool
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static CachedToken *
find_entry(UsageOptions *opts)
{
	uint32		h = hash_secret(opts->client_secret);

	for (CachedToken *t = token_cache; t; t = t->next)
	{
		if (t->umid == opts->umid &&
			same_str(t->token_url, opts->token_url) &&
			same_str(t->client_id, opts->client_id) &&
			same_str(t->scope, opts->scope) &&
			t->secret_hash == h)
			return t;
	}
	return NULL;
}

static void
forget_token(CachedToken *t)
{
	if (t->access_token)
	{
		explicit_bzero(t->access_token, strlen(t->access_token));
		pfree(t->access_token);
		t->access_token = NULL;
	}
}

static void
append_form_field(StringInfo buf, const char *name, const char *value)
{
	if (buf->len > 0)
		appendStringInfoChar(buf, '&');
	appendStringInfoString(buf, name);
	appendStringInfoChar(buf, '=');
	usage_append_url_encoded(buf, value);
}

/*
 * The lifetime of a token, in whole seconds, from the text of expires_in: a
 * JSON number (maybe huge, fractional or in exponent form) or a string
 * holding one.  Not positive or not a number: DEFAULT_EXPIRES_IN.  Longer
 * than MAX_EXPIRES_IN: that, so that computing the refresh time never
 * overflows (and a 401 still brings a new token early).
 */
static int64
clamp_expires_in(const char *text)
{
	char	   *end;
	double		v;

	if (text == NULL)
		return DEFAULT_EXPIRES_IN;
	v = strtod(text, &end);
	if (end == text || *end != '\0' || isnan(v) || v < 1)
		return DEFAULT_EXPIRES_IN;
	if (v > MAX_EXPIRES_IN)
		return MAX_EXPIRES_IN;
	return (int64) v;
}

/*
 * The client-credentials grant.  Returns the token (palloc'd in
 * TopMemoryContext) and its lifetime in seconds.
 */
static char *
fetch_token(UsageOptions *opts, UsageHttpStats *stats, int64 *expires_in)
{
	StringInfoData form;
	UsageHttpRequest req = {0};
	UsageTransfer *volatile xfer = NULL;
	char	   *volatile token = NULL;

	initStringInfo(&form);
	append_form_field(&form, "grant_type", "client_credentials");
	append_form_field(&form, "client_id", opts->client_id);
	append_form_field(&form, "client_secret", opts->client_secret);
	if (opts->scope)
		append_form_field(&form, "scope", opts->scope);

	req.method = "POST";
	req.url = opts->token_url;
	req.body = form.data;
	req.content_type = "application/x-www-form-urlencoded";
	req.opts = opts;

	PG_TRY();
	{
		const char *body;
		size_t		len;
		long		status;
		bool		found;
		char	   *exp;
		char	   *ctx = psprintf("token request for server \"%s\"", opts->server_name);

		elog(DEBUG1, "usage_fdw: POST %s (client credentials of client_id \"%s\"; secret not shown)",
			 opts->token_url, opts->client_id);
		xfer = usage_http_start(&req, stats);
		explicit_bzero(form.data, form.len);
		usage_http_wait(xfer);
		status = usage_http_status(xfer);
		body = usage_http_body(xfer, &len);

		if (status != 200)
		{
			char	   *err;
			char	   *desc;
			char	   *detail;

			/* not a refusal: the endpoint could not be reached or failed */
			if (status == 0 || status >= 500 || status == 429)
				usage_http_report_failure(xfer, ctx);
			desc = usage_json_get_string(body, len, "error_description", &found);
			if (!found)
				desc = NULL;
			err = usage_json_get_string(body, len, "error", &found);
			if (!found)
				err = NULL;
			if (err && desc)
				detail = psprintf("The token endpoint answered \"%s\": %s.",
								  usage_api_text(err, strlen(err), 100),
								  usage_api_text(desc, strlen(desc), 400));
			else if (err)
				detail = psprintf("The token endpoint answered \"%s\".",
								  usage_api_text(err, strlen(err), 100));
			else
				detail = psprintf("The token endpoint gave no error code; its response body was \"%s\".",
								  usage_api_text(body, len, 400));
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("token endpoint refused the client credentials of server \"%s\" with HTTP %ld",
							opts->server_name, status),
					 errdetail("%s", detail),
					 errhint("Check client_id and client_secret in the user mapping, and the server options token_url and scope."),
					 errcontext("%s", ctx)));
		}

		token = usage_json_get_string(body, len, "access_token", &found);
		if (!found || token == NULL || token[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("token endpoint of server \"%s\" returned no access_token",
							opts->server_name),
					 errcontext("%s", ctx)));
		token = MemoryContextStrdup(TopMemoryContext, token);
		exp = usage_json_get_string(body, len, "expires_in", &found);
		*expires_in = found ? clamp_expires_in(exp) : DEFAULT_EXPIRES_IN;
	}
	PG_CATCH();
	{
		usage_http_release(xfer);
		PG_RE_THROW();
	}
	PG_END_TRY();
	usage_http_release(xfer);

	return token;
}

/*
 * The bearer token for a scan's requests.
 */
const char *
usage_auth_token(UsageOptions *opts, UsageHttpStats *stats)
{
	CachedToken *t;
	TimestampTz now = GetCurrentTimestamp();
	int64		expires_in;
	char	   *token;
	int64		margin;

	if (opts->access_token)
		return opts->access_token;
	if (opts->client_id == NULL || opts->client_secret == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("user mapping for server \"%s\" has no credentials",
						opts->server_name)));

	t = find_entry(opts);
	if (t && t->access_token && now < t->refresh_at)
		return t->access_token;

	token = fetch_token(opts, stats, &expires_in);

	if (t == NULL)
	{
		t = MemoryContextAllocZero(TopMemoryContext, sizeof(CachedToken));
		t->umid = opts->umid;
		t->token_url = MemoryContextStrdup(TopMemoryContext, opts->token_url);
		t->client_id = MemoryContextStrdup(TopMemoryContext, opts->client_id);
		t->scope = opts->scope ? MemoryContextStrdup(TopMemoryContext, opts->scope) : NULL;
		t->secret_hash = hash_secret(opts->client_secret);
		t->next = token_cache;
		token_cache = t;
	}
	forget_token(t);
	t->access_token = token;
	/* refresh a minute early, or a tenth of the lifetime for short ones */
	margin = Min(60, expires_in / 10);
	t->refresh_at = TimestampTzPlusMilliseconds(now, (expires_in - margin) * 1000);
	return t->access_token;
}

/*
 * Can a 401 be cured by fetching a new token?
 */
bool
usage_auth_can_refresh(UsageOptions *opts)
{
	return opts->access_token == NULL && opts->client_id != NULL;
}

void
usage_auth_invalidate(UsageOptions *opts)
{
	CachedToken *t;

	if (!usage_auth_can_refresh(opts))
		return;
	t = find_entry(opts);
	if (t)
		forget_token(t);
}
