/*-------------------------------------------------------------------------
 *
 * auth.c
 *		  Bearer tokens for usage_fdw's requests.
 *
 * A user mapping holds either an access_token, sent as is, or a client_id
 * with a client_secret, or with a certificate and its key, for the OAuth2
 * client-credentials grant against the server's token_url (the certificate
 * signs a JWT client assertion: jwt.c).  Tokens obtained that way are
 * cached per backend and
 * per user mapping until shortly before they expire.  A request gets its
 * tokens from a bearer source (usage_auth_bearer): after a 401 from the
 * API, http.c asks the source to refresh, which discards the cached token
 * so that the next one is fetched anew.  Neither the secret nor a token ever
 * appears in a message.
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

/* a token obtained with the client credentials of a user mapping */
typedef struct CachedToken
{
	Oid			umid;
	char	   *token_url;
	char	   *client_id;
	char	   *scope;
	uint32		secret_hash;	/* of the secret or the key, which are not
								 * kept here */
	char	   *access_token;
	TimestampTz refresh_at;		/* fetch a new one from this time on */
	struct CachedToken *next;
} CachedToken;

static CachedToken *token_cache = NULL;

/*
 * The owner slot of the token request under way.  Static storage, so that
 * the transfer may be left to transaction end when an error interrupts it.
 */
static UsageTransfer *token_xfer = NULL;

/* the bearer source of a scan: its options and its counters */
typedef struct AuthSource
{
	UsageBearerSource source;
	UsageOptions *opts;
	UsageHttpStats *stats;
} AuthSource;

/* lifetime assumed without expires_in, and the longest one believed */
#define DEFAULT_EXPIRES_IN	3600
#define MAX_EXPIRES_IN		86400

/*
 * FNV-1a of the secret, or of the certificate and key: only to notice that
 * the credentials changed.
 */
static uint32
hash_secret(UsageOptions *opts)
{
	uint32		h = 2166136261u;
	const char *parts[] = {opts->client_secret, opts->client_certificate,
	opts->client_key};

	for (int i = 0; i < (int) lengthof(parts); i++)
	{
		for (const unsigned char *p = (const unsigned char *) parts[i]; p && *p; p++)
			h = (h ^ *p) * 16777619u;
		h = (h ^ 0xFF) * 16777619u;
	}
	return h;
}

/* Can opts get tokens from the token endpoint? */
static bool
has_client_credentials(UsageOptions *opts)
{
	return opts->client_id != NULL &&
		(opts->client_secret != NULL ||
		 (opts->client_certificate != NULL && opts->client_key != NULL));
}

/* Are two strings, either of which may be NULL, the same? */
static bool
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* The cache entry of the user mapping and credentials of opts, or NULL. */
static CachedToken *
find_entry(UsageOptions *opts)
{
	uint32		h = hash_secret(opts);

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

/* Discard an entry's token, overwriting it first. */
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

/* Append name=value, URL-encoded, to a form body. */
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
 * The token endpoint's answer other than HTTP 200, as an error.  An endpoint
 * that could not be reached or failed is reported as such; any other answer
 * is a refusal of the client credentials.
 */
USAGE_NORETURN static void
report_token_refusal(UsageOptions *opts, UsageTransfer *xfer, const char *ctx)
{
	UsageFailure failure = usage_http_failure(xfer);
	const char *body;
	size_t		len;
	bool		found;
	char	   *err;
	char	   *desc;
	char	   *detail;

	if (failure != USAGE_FAIL_AUTH && failure != USAGE_FAIL_CLIENT)
		usage_http_report_failure(xfer, ctx);

	body = usage_http_body(xfer, &len);
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
					opts->server_name, usage_http_status(xfer)),
			 errdetail("%s", detail),
			 opts->client_secret ?
			 errhint("Check client_id and client_secret in the user mapping, and the server options token_url and scope.") :
			 errhint("Check client_id, and that client_certificate is the one registered with the application; check the server options token_url and scope."),
			 errcontext("%s", ctx)));
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
	const char *body;
	size_t		len;
	bool		found;
	char	   *token;
	char	   *exp;
	char	   *ctx = psprintf("token request for server \"%s\"", opts->server_name);

	initStringInfo(&form);
	append_form_field(&form, "grant_type", "client_credentials");
	if (opts->client_secret)
	{
		append_form_field(&form, "client_id", opts->client_id);
		append_form_field(&form, "client_secret", opts->client_secret);
	}
	else
	{
		char	   *assertion = usage_client_assertion(opts->client_certificate,
													   opts->client_key,
													   opts->client_key_passphrase,
													   opts->client_id,
													   opts->token_url);

		usage_http_note_secret(assertion);
		append_form_field(&form, "client_assertion_type",
						  "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
		append_form_field(&form, "client_assertion", assertion);
		explicit_bzero(assertion, strlen(assertion));
	}
	if (opts->scope)
		append_form_field(&form, "scope", opts->scope);

	req.method = "POST";
	req.url = opts->token_url;
	req.body = form.data;
	req.content_type = "application/x-www-form-urlencoded";
	req.opts = opts;

	/* one left over by an error caught in a subtransaction */
	usage_http_release(&token_xfer);
	elog(DEBUG1, "usage_fdw: POST %s (client credentials of client_id \"%s\", with a %s not shown)",
		 opts->token_url, opts->client_id,
		 opts->client_secret ? "secret" : "signed client assertion");
	usage_http_start(&req, stats, &token_xfer);
	explicit_bzero(form.data, form.len);
	usage_http_wait(token_xfer);
	if (usage_http_failure(token_xfer) != USAGE_FAIL_NONE)
		report_token_refusal(opts, token_xfer, ctx);

	body = usage_http_body(token_xfer, &len);
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
	usage_http_release(&token_xfer);

	return token;
}

/*
 * The bearer token for a scan's requests.
 */
static const char *
auth_token(UsageOptions *opts, UsageHttpStats *stats)
{
	CachedToken *t;
	TimestampTz now = GetCurrentTimestamp();
	int64		expires_in;
	char	   *token;
	int64		margin;

	if (opts->access_token)
		return opts->access_token;
	if (!has_client_credentials(opts))
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
		t->secret_hash = hash_secret(opts);
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

/* UsageBearerSource.token of a scan */
static const char *
source_token(void *arg)
{
	AuthSource *src = (AuthSource *) arg;

	return auth_token(src->opts, src->stats);
}

/*
 * UsageBearerSource.refresh of a scan: after a 401, discard the cached
 * token; true when a new one can be fetched (client credentials), false
 * for a static access_token.
 */
static bool
source_refresh(void *arg)
{
	AuthSource *src = (AuthSource *) arg;
	CachedToken *t;

	if (src->opts->access_token != NULL || src->opts->client_id == NULL)
		return false;
	t = find_entry(src->opts);
	if (t)
		forget_token(t);
	return true;
}

/*
 * usage_auth_bearer
 *		The bearer source of a scan's requests (palloc'd in the current
 *		memory context, which must outlive the requests).  Token requests
 *		count in stats.
 */
const UsageBearerSource *
usage_auth_bearer(UsageOptions *opts, UsageHttpStats *stats)
{
	AuthSource *src = palloc0(sizeof(AuthSource));

	src->opts = opts;
	src->stats = stats;
	src->source.token = source_token;
	src->source.refresh = source_refresh;
	src->source.arg = src;
	return &src->source;
}
