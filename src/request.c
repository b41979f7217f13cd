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

static const UsageValue *
chosen(const UsageValueSet *sets, const int *choice, int p)
{
	const UsageValueSet *set = &sets[p];

	if (!set->sent || set->nvalues == 0 || set->values == NULL)
		return NULL;
	return &set->values[choice ? choice[p] : 0];
}

/*
 * The full URL of the first page of a request.
 */
char *
usage_build_url(UsageOptions *opts, const UsageValueSet *sets, const int *choice)
{
	const UsageEndpoint *ep = opts->endpoint;
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoString(&buf, opts->base_url);

	/* path template: {name} is replaced by the parameter of that api_name */
	for (const char *p = ep->path; *p; p++)
	{
		if (*p == '{')
		{
			const char *end = strchr(p, '}');
			bool		done = false;

			Assert(end != NULL);
			for (int i = 0; i < ep->nparams; i++)
			{
				const UsageParamDef *def = &ep->params[i];
				const UsageValue *v;

				if (def->place != USAGE_PLACE_PATH ||
					strlen(def->api_name) != (size_t) (end - p - 1) ||
					strncmp(def->api_name, p + 1, end - p - 1) != 0)
					continue;
				v = chosen(sets, choice, i);
				if (v == NULL || v->text == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
							 errmsg("server \"%s\" needs option \"%s\" for endpoint \"%s\"",
									opts->server_name, def->option, ep->name)));
				usage_append_url_encoded(&buf, v->text);
				done = true;
				break;
			}
			Assert(done);
			(void) done;
			p = end;
			continue;
		}
		appendStringInfoChar(&buf, *p);
	}

	for (int i = 0; i < ep->nparams; i++)
	{
		const UsageParamDef *def = &ep->params[i];
		const UsageValue *v;

		if (def->place != USAGE_PLACE_QUERY)
			continue;
		v = chosen(sets, choice, i);
		if (v == NULL)
			continue;
		appendStringInfoChar(&buf, first ? '?' : '&');
		first = false;
		appendStringInfoString(&buf, def->api_name);
		appendStringInfoChar(&buf, '=');
		usage_append_url_encoded(&buf, v->text);
	}
	if (ep->paging == USAGE_PAGING_NEXTLINK && ep->page_size_param)
		appendStringInfo(&buf, "%c%s=%d", first ? '?' : '&',
						 ep->page_size_param, opts->page_size);

	return buf.data;
}

/*
 * The JSON body of a POST request, or NULL for an endpoint without one.
 */
char *
usage_build_body(UsageOptions *opts, const UsageValueSet *sets, const int *choice)
{
	const UsageEndpoint *ep = opts->endpoint;
	StringInfoData buf;
	bool		any = false;

	if (strcmp(ep->method, "POST") != 0)
		return NULL;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < ep->nparams; i++)
	{
		const UsageParamDef *def = &ep->params[i];
		const UsageValueSet *set = &sets[i];
		const UsageValue *v;

		if (def->place != USAGE_PLACE_BODY)
			continue;

		if (def->kind == USAGE_KIND_DATE_RANGE)
		{
			appendStringInfo(&buf, "%s\"%s\":" INT64_FORMAT ",\"%s\":" INT64_FORMAT,
							 any ? "," : "",
							 def->api_name, set->start_ms,
							 def->api_name_end, set->end_ms);
			any = true;
			continue;
		}

		v = chosen(sets, choice, i);
		if (v == NULL)
			continue;
		if (any)
			appendStringInfoChar(&buf, ',');
		any = true;
		escape_json(&buf, def->api_name);
		appendStringInfoChar(&buf, ':');
		switch (def->kind)
		{
			case USAGE_KIND_BOOLEAN:
				appendStringInfoString(&buf, v->boolval ? "true" : "false");
				break;
			case USAGE_KIND_EPOCH_MS:
				appendStringInfo(&buf, INT64_FORMAT, v->num);
				break;
			case USAGE_KIND_STRING_LIST:
				appendStringInfoChar(&buf, '[');
				escape_json(&buf, v->text);
				appendStringInfoChar(&buf, ']');
				break;
			default:
				escape_json(&buf, v->text);
				break;
		}
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
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

	key = unconstify(char *, next_link);
	entry = (FollowedPage *) hash_search(*followed, &key, HASH_FIND, NULL);
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
 * carried next_link (NULL when it had none).  Only an endpoint with
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
	if (next_link == NULL || opts->endpoint->paging != USAGE_PAGING_NEXTLINK)
		return NULL;

	check_next_origin(opts, next_link);
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
