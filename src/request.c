/*-------------------------------------------------------------------------
 *
 * request.c
 *		  The URL, query string and JSON body of one request.
 *
 * The values of one request are one choice from each parameter's value set
 * (see pushdown.c).  Path values are percent-encoded, query values
 * URL-encoded, body values JSON-escaped; the JSON type of each body member
 * comes from the endpoint catalogue.  Also here: the origin check that keeps
 * a bearer token from ever being sent to another host through nextLink.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "usage_fdw.h"

/*
 * Percent-encode everything but RFC 3986's unreserved characters; suitable
 * for path segments, query values and form values alike.
 */
void
usage_append_url_encoded(StringInfo buf, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') ||
			*p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(buf, (char) *p);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[*p >> 4]);
			appendStringInfoChar(buf, hex[*p & 0x0F]);
		}
	}
}

/* Is a value of this parameter a JSON number in a body? */
static bool
body_number(const UsageParamDef *def)
{
	return def->kind == USAGE_KIND_NUMBER || def->kind == USAGE_KIND_BOOLEAN ||
		((def->kind == USAGE_KIND_TIME || def->kind == USAGE_KIND_TIME_RANGE) &&
		 def->format == USAGE_TIME_EPOCH_MS);
}

/*
 * Write one value where its parameter goes: verbatim (a placeholder), or
 * encoded for its place: percent-encoded in the path and the query string,
 * as the JSON type of its kind in the body.
 */
static void
append_value(StringInfo buf, const UsageParamDef *def, const char *text,
			 bool verbatim)
{
	if (verbatim)
		appendStringInfoString(buf, text);
	else if (def->place != USAGE_PLACE_BODY)
		usage_append_url_encoded(buf, text);
	else if (body_number(def))
		appendStringInfoString(buf, text);
	else if (def->kind == USAGE_KIND_STRING_LIST)
	{
		appendStringInfoChar(buf, '[');
		escape_json(buf, text);
		appendStringInfoChar(buf, ']');
	}
	else
		escape_json(buf, text);
}

/*
 * Append name=value to the query string or the JSON body, for a parameter
 * that is not in the path; first[0] and first[1] tell whether the query
 * string and the body have no member yet.
 */
static void
append_param(StringInfo line, StringInfo body, bool *first,
			 const UsageParamDef *def, const char *name, const char *text,
			 bool verbatim)
{
	if (def->place == USAGE_PLACE_QUERY)
	{
		appendStringInfoChar(line, first[0] ? '?' : '&');
		usage_append_url_encoded(line, name);
		appendStringInfoChar(line, '=');
		append_value(line, def, text, verbatim);
		first[0] = false;
	}
	else
	{
		if (!first[1])
			appendStringInfoChar(body, ',');
		first[1] = false;
		escape_json(body, name);
		appendStringInfoChar(body, ':');
		append_value(body, def, text, verbatim);
	}
}

/* The path template: {name} is replaced by the parameter of that api_name. */
static void
render_path(const UsageEndpoint *ep, usage_value_source source, void *arg,
			StringInfo line)
{
	for (const char *p = ep->path; *p; p++)
	{
		const char *end;

		if (*p != '{')
		{
			appendStringInfoChar(line, *p);
			continue;
		}
		end = strchr(p, '}');
		Assert(end != NULL);
		for (int i = 0; i < ep->nparams; i++)
		{
			const UsageParamDef *def = &ep->params[i];
			UsageRenderValue v = {0};

			if (def->place != USAGE_PLACE_PATH ||
				strlen(def->api_name) != (size_t) (end - p - 1) ||
				strncmp(def->api_name, p + 1, end - p - 1) != 0)
				continue;
			source(arg, i, &v);
			if (v.text == NULL)
				appendStringInfo(line, "{%s}", def->api_name);
			else
				append_value(line, def, v.text, v.verbatim);
			break;
		}
		p = end;
	}
}

/*
 * Render the request of an endpoint: the path and query string into line,
 * the JSON body into body, and the page size parameter of a paged
 * endpoint.  source gives, parameter by parameter in the catalogue's
 * order, what is written: for the executor the values of one request, for
 * EXPLAIN the values known at plan time or placeholders.
 */
void
usage_render_request(const UsageEndpoint *ep, UsageOptions *opts,
					 usage_value_source source, void *arg,
					 StringInfo line, StringInfo body)
{
	bool		first[2] = {true, true};	/* query string, body */

	render_path(ep, source, arg, line);
	appendStringInfoChar(body, '{');
	for (int i = 0; i < ep->nparams; i++)
	{
		const UsageParamDef *def = &ep->params[i];
		UsageRenderValue v = {0};

		if (def->place == USAGE_PLACE_PATH)
			continue;
		source(arg, i, &v);
		if (def->kind == USAGE_KIND_TIME_RANGE)
		{
			if (def->api_name && v.text)
				append_param(line, body, first, def, def->api_name,
							 v.text, v.verbatim);
			if (def->api_name_end && v.end_text)
				append_param(line, body, first, def, def->api_name_end,
							 v.end_text, v.verbatim);
		}
		else if (v.text != NULL)
			append_param(line, body, first, def, def->api_name,
						 v.text, v.verbatim);
	}
	appendStringInfoChar(body, '}');
	if (ep->paging == USAGE_PAGING_NEXTLINK && ep->page_size_param)
	{
		appendStringInfoChar(line, first[0] ? '?' : '&');
		usage_append_url_encoded(line, ep->page_size_param);
		appendStringInfo(line, "=%d", opts->page_size);
	}
}

/* The values of one request: a choice from each parameter's value set. */
typedef struct ChosenValues
{
	UsageOptions *opts;
	const UsageValueSet *sets;
	const int  *choice;
} ChosenValues;

/* usage_value_source of a request the executor sends */
static void
chosen_value(void *arg, int p, UsageRenderValue *out)
{
	ChosenValues *cv = (ChosenValues *) arg;
	const UsageEndpoint *ep = cv->opts->endpoint;
	const UsageParamDef *def = &ep->params[p];
	const UsageValueSet *set = &cv->sets[p];
	const UsageValue *v = NULL;

	if (set->sent && set->nvalues > 0 && set->values != NULL)
		v = &set->values[cv->choice ? cv->choice[p] : 0];

	if (def->place == USAGE_PLACE_PATH && (v == NULL || v->text == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" needs option \"%s\" for endpoint \"%s\"",
						cv->opts->server_name, def->option, ep->name)));
	if (def->kind == USAGE_KIND_TIME_RANGE)
	{
		out->text = set->from_text;
		out->end_text = set->to_text;
		return;
	}
	if (v == NULL)
		return;
	out->text = v->text;
}

/*
 * The first page of a request: its full URL, and its JSON body (NULL for
 * an endpoint without one).
 */
void
usage_build_request(UsageOptions *opts, const UsageValueSet *sets,
					const int *choice, char **url, char **body)
{
	ChosenValues cv;
	StringInfoData line;
	StringInfoData json;

	cv.opts = opts;
	cv.sets = sets;
	cv.choice = choice;
	initStringInfo(&line);
	initStringInfo(&json);
	appendStringInfoString(&line, opts->base_url);
	usage_render_request(opts->endpoint, opts, chosen_value, &cv, &line, &json);
	*url = line.data;
	*body = strcmp(opts->endpoint->method, "POST") == 0 ? json.data : NULL;
}

/*
 * scheme://host:port of a URL (port always explicit, host lower-cased by
 * libcurl's parser), or NULL when the URL does not parse.
 */
char *
usage_url_origin(const char *url)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL,
			   *host = NULL,
			   *port = NULL;
	char	   *result = NULL;

	if (u == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
	{
		result = psprintf("%s://%s:%s", scheme, host, port);
		for (char *p = result; *p; p++)
			*p = pg_tolower((unsigned char) *p);
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return result;
}

/*
 * Do two URLs have the same scheme, host and port?
 */
bool
usage_same_origin(const char *url_a, const char *url_b)
{
	char	   *a = usage_url_origin(url_a);
	char	   *b = usage_url_origin(url_b);

	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* ----------------------------------------------------------------
 *		Following nextLink
 * ----------------------------------------------------------------
 */

/* an entry of the table of pages a call has read */
typedef struct FollowedPage
{
	char	   *url;			/* key: the string, not the pointer */
	int64		page;			/* 1 = the first page */
} FollowedPage;

/* dynahash support for the followed pages: keys are C strings */
static uint32
followed_hash(const void *key, Size keysize)
{
	const char *url = *(char *const *) key;

	return hash_bytes((const unsigned char *) url, strlen(url));
}

static int
followed_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(char *const *) key1, *(char *const *) key2);
}

/*
 * A next-page link as an absolute URL: a URI reference (absolute, or
 * relative such as "/smp/...?skiptoken=2" or "?skiptoken=2") resolved
 * against the URL of the page that carried it.  NULL when it does not
 * parse.
 */
static char *
resolve_link(const char *page_url, const char *link)
{
	CURLU	   *u = curl_url();
	char	   *abs = NULL;
	char	   *result = NULL;

	if (u == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, page_url, 0) == CURLUE_OK &&
		curl_url_set(u, CURLUPART_URL, link, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK)
		result = pstrdup(abs);
	curl_free(abs);
	curl_url_cleanup(u);
	return result;
}

/*
 * Refuse a nextLink to another origin than base_url: the bearer token is
 * only ever sent to base_url.
 */
static void
check_next_origin(UsageOptions *opts, const char *next_link)
{
	char	   *origin;

	if (usage_same_origin(next_link, opts->base_url))
		return;
	origin = usage_url_origin(next_link);
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("refusing to follow a nextLink to another origin"),
			 errdetail("The API answered with a nextLink to %s, but base_url is %s; the bearer token is only sent to base_url.",
					   origin ? usage_api_text(origin, strlen(origin), 200) :
					   "an unparsable URL",
					   usage_url_origin(opts->base_url))));
}

/* The entry of a page the call has read, or NULL (also with no table). */
static FollowedPage *
followed_page(HTAB *followed, const char *url)
{
	char	   *key = unconstify(char *, url);

	if (followed == NULL)
		return NULL;
	return (FollowedPage *) hash_search(followed, &key, HASH_FIND, NULL);
}

/*
 * Refuse a nextLink to a page the call has read already (a loop, however
 * long).  The URLs read are kept in a hash table per call (*followed,
 * created in cxt on the second page), so a call of n pages costs O(n).
 */
static void
check_next_cycle(const char *page_url, const char *next_link, int64 npages,
				 HTAB **followed, MemoryContext cxt)
{
	FollowedPage *entry;
	bool		found;
	char	   *key;

	if (*followed == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(char *);
		ctl.entrysize = sizeof(FollowedPage);
		ctl.hash = followed_hash;
		ctl.match = followed_match;
		ctl.hcxt = cxt;
		*followed = hash_create("usage_fdw followed pages", 16, &ctl,
								HASH_ELEM | HASH_FUNCTION | HASH_COMPARE |
								HASH_CONTEXT);
	}
	/* the page just read (the first one was never entered) */
	key = unconstify(char *, page_url);
	entry = (FollowedPage *) hash_search(*followed, &key, HASH_ENTER, &found);
	if (!found)
		entry->page = npages;

	entry = followed_page(*followed, next_link);
	if (entry != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the API's nextLink leads back to a page already read"),
				 errdetail("The nextLink of page " INT64_FORMAT " points to page " INT64_FORMAT " of the same request; following it would never end.",
						   npages, entry->page)));
}

/*
 * usage_next_page_url
 *		The URL of a call's next page, or NULL when the call has no more.
 *
 * page_url is the page just read, the call's npages-th, whose response
 * carried next_link (NULL when it had none), a URI reference resolved
 * against page_url.  Only an endpoint with
 * nextLink paging follows it, and only after the checks: same origin as
 * base_url, not a page already read in this call, and within max_pages.
 * The result is palloc'd in cxt, where the call's table of pages read
 * (*followed) lives too.
 */
char *
usage_next_page_url(UsageOptions *opts, const char *page_url,
					const char *next_link, int64 npages,
					HTAB **followed, MemoryContext cxt)
{
	char	   *resolved;

	if (next_link == NULL || opts->endpoint->paging != USAGE_PAGING_NEXTLINK)
		return NULL;

	resolved = resolve_link(page_url, next_link);
	check_next_origin(opts, resolved ? resolved : next_link);
	next_link = resolved;
	check_next_cycle(page_url, next_link, npages, followed, cxt);
	if (npages >= opts->max_pages)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg_plural("a request of foreign table %s needs more than max_pages = %d page",
							   "a request of foreign table %s needs more than max_pages = %d pages",
							   opts->max_pages,
							   opts->table_name, opts->max_pages),
				 errdetail("The API answered page " INT64_FORMAT " with a nextLink.",
						   npages),
				 errhint("Narrow the query, or raise the option max_pages of the foreign table or its server.")));
	return MemoryContextStrdup(cxt, next_link);
}

/*
 * usage_next_page_guess
 *		The URL that usage_next_page_url would give if the page just being
 *		read (page_url, the call's npages-th) carried next_link, or NULL when
 *		it would give none or refuse it.  Raises no error and records
 *		nothing: the caller may request that page ahead, before the page's
 *		parse says what its nextLink is, and must check that it is the one
 *		usage_next_page_url then gives.  palloc'd.
 */
char *
usage_next_page_guess(UsageOptions *opts, const char *page_url,
					  const char *next_link, int64 npages, HTAB *followed)
{
	char	   *resolved;

	if (next_link == NULL || opts->endpoint->paging != USAGE_PAGING_NEXTLINK ||
		npages >= opts->max_pages)
		return NULL;
	resolved = resolve_link(page_url, next_link);
	if (resolved == NULL || !usage_same_origin(resolved, opts->base_url) ||
		strcmp(resolved, page_url) == 0 ||
		followed_page(followed, resolved) != NULL)
		return NULL;
	return resolved;
}
