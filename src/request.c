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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "lib/stringinfo.h"
#include "utils/json.h"

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

/*
 * Write one value where its parameter goes: verbatim (a placeholder, a
 * number already formatted), or encoded for its place: percent-encoded in
 * the path and the query string, as the JSON type of its kind in the body.
 */
static void
append_value(StringInfo buf, const UsageParamDef *def,
			 const UsageRenderValue *v)
{
	if (v->verbatim)
	{
		appendStringInfoString(buf, v->text);
		return;
	}
	if (def->place != USAGE_PLACE_BODY)
	{
		usage_append_url_encoded(buf, v->text);
		return;
	}
	switch (def->kind)
	{
		case USAGE_KIND_BOOLEAN:
		case USAGE_KIND_EPOCH_MS:
			appendStringInfoString(buf, v->text);
			break;
		case USAGE_KIND_STRING_LIST:
			appendStringInfoChar(buf, '[');
			escape_json(buf, v->text);
			appendStringInfoChar(buf, ']');
			break;
		default:
			escape_json(buf, v->text);
			break;
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
			Assert(v.text != NULL);
			append_value(line, def, &v);
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
	bool		first_query = true;
	bool		any_body = false;

	render_path(ep, source, arg, line);
	appendStringInfoChar(body, '{');
	for (int i = 0; i < ep->nparams; i++)
	{
		const UsageParamDef *def = &ep->params[i];
		UsageRenderValue v = {0};

		if (def->place == USAGE_PLACE_PATH)
			continue;
		source(arg, i, &v);
		if (v.text == NULL)
			continue;
		if (def->place == USAGE_PLACE_QUERY)
		{
			appendStringInfo(line, "%c%s=", first_query ? '?' : '&', def->api_name);
			append_value(line, def, &v);
			first_query = false;
		}
		else if (def->kind == USAGE_KIND_DATE_RANGE)
		{
			appendStringInfo(body, "%s\"%s\":%s,\"%s\":%s", any_body ? "," : "",
							 def->api_name, v.text, def->api_name_end, v.end_text);
			any_body = true;
		}
		else
		{
			if (any_body)
				appendStringInfoChar(body, ',');
			escape_json(body, def->api_name);
			appendStringInfoChar(body, ':');
			append_value(body, def, &v);
			any_body = true;
		}
	}
	appendStringInfoChar(body, '}');
	if (ep->paging == USAGE_PAGING_NEXTLINK && ep->page_size_param)
		appendStringInfo(line, "%c%s=%d", first_query ? '?' : '&',
						 ep->page_size_param, opts->page_size);
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
	if (def->place == USAGE_PLACE_BODY && def->kind == USAGE_KIND_DATE_RANGE)
	{
		out->text = psprintf(INT64_FORMAT, set->start_ms);
		out->end_text = psprintf(INT64_FORMAT, set->end_ms);
		out->verbatim = true;
		return;
	}
	if (v == NULL)
		return;
	out->text = v->text;
	if (def->place != USAGE_PLACE_BODY)
		return;
	if (def->kind == USAGE_KIND_BOOLEAN)
		out->text = v->boolval ? "true" : "false";
	else if (def->kind == USAGE_KIND_EPOCH_MS)
		out->text = psprintf(INT64_FORMAT, v->num);
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
