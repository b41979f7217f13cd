/*-------------------------------------------------------------------------
 *
 * json_get.c
 *		  One string member of a small JSON body: an API's error text, a
 *		  token response's access_token; and a guess at a page's nextLink
 *		  from the last bytes of its body.
 *
 * These bodies are small and read whole, so PostgreSQL's recursive parser
 * (pg_parse_json) reads them; the response rows are read by json_tuple.c.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "usage_fdw.h"

/* ----------------------------------------------------------------
 *		One string member, for error bodies and token responses
 * ----------------------------------------------------------------
 */

/* semantic state of usage_json_get_string */
typedef struct GetStringState
{
	JsonLexContext *lex;
	const char *key;			/* first path element */
	const char *subkey;			/* second path element, or NULL */
	bool		in_key;			/* inside the object of key (subkey case) */
	bool		current;		/* the next scalar is the value */
	bool		found;
	char	   *value;
} GetStringState;

/* Field start: is it the key, or the subkey inside the key's object? */
static USAGE_JSON_ACTION
gs_field_start(void *state, char *fname, bool isnull)
{
	GetStringState *st = (GetStringState *) state;
	int			level = st->lex->lex_level;

	st->current = false;
	if (level == 1)
	{
		st->in_key = false;
		if (strcmp(fname, st->key) == 0)
		{
			if (st->subkey)
				st->in_key = true;
			else
				st->current = true;
		}
	}
	else if (level == 2 && st->in_key && strcmp(fname, st->subkey) == 0)
		st->current = true;
	USAGE_JSON_ACTION_DONE;
}

/* A scalar: the value sought when it follows the key at its level. */
static USAGE_JSON_ACTION
gs_scalar(void *state, char *token, JsonTokenType tokentype)
{
	GetStringState *st = (GetStringState *) state;
	int			level = st->lex->lex_level;

	if (st->current && !st->found &&
		level == (st->subkey ? 2 : 1) && tokentype != JSON_TOKEN_NULL)
	{
		st->found = true;
		st->value = token;
	}
	st->current = false;
	USAGE_JSON_ACTION_DONE;
}

/*
 * The scalar at key ("a" or "a.b") of a JSON object body, as text.  Sets
 * *found = false, without an error, when the body is not valid JSON or has
 * no such scalar.
 */
char *
usage_json_get_string(const char *body, size_t len, const char *key, bool *found)
{
	GetStringState st;
	JsonSemAction sem;
	const char *dot = strchr(key, '.');
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile JsonParseErrorType rc = JSON_SUCCESS;

	*found = false;
	if (len == 0 || pg_encoding_verifymbstr(PG_UTF8, body, (int) len) != (int) len)
		return NULL;

	memset(&st, 0, sizeof(st));
	if (dot)
	{
		st.key = pnstrdup(key, dot - key);
		st.subkey = dot + 1;
	}
	else
		st.key = key;
	st.lex = usage_compat_json_lexer(body, len, GetDatabaseEncoding(), true);

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_field_start = gs_field_start;
	sem.scalar = gs_scalar;

	/*
	 * In a database whose encoding is not UTF-8 the lexer converts \u
	 * escapes to it and raises an error for a character it cannot hold.
	 * Such a value is as good as absent: the caller falls back to the raw
	 * body (see usage_api_text), and the API's real error is not replaced by
	 * a conversion error.  Any other error is passed on.
	 */
	PG_TRY();
	{
		rc = pg_parse_json(st.lex, &sem);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_UNTRANSLATABLE_CHARACTER &&
			edata->sqlerrcode != ERRCODE_CHARACTER_NOT_IN_REPERTOIRE)
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(edata);
		return NULL;
	}
	PG_END_TRY();
	if (rc != JSON_SUCCESS)
		return NULL;
	*found = st.found;
	return st.value;
}

/* ----------------------------------------------------------------
 *		A page's nextLink, guessed from the end of its body
 * ----------------------------------------------------------------
 */

/* the end of data[0 .. end) without JSON whitespace */
static const char *
skip_space_back(const char *data, const char *end)
{
	while (end > data &&
		   (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' ||
			end[-1] == '\r'))
		end--;
	return end;
}

/*
 * usage_json_link_at_end
 *		The next page's link of a body of endpoint ep that ends in data (the
 *		last len bytes of the body), when the body plainly ends with it:
 *		{..., "nextLink": "<a string with no escape>"} for a nextLink pointer
 *		of one member of the top-level object.  NULL otherwise (and for an
 *		empty link).
 *
 * This is a guess read backwards from the body's last bytes, without
 * parsing what comes before: a page's next request may be sent on it while
 * the page is parsed, but only the parse says what the link is (the caller
 * keeps the request only if the two agree).  palloc'd.
 */
char *
usage_json_link_at_end(const UsageEndpoint *ep, const char *data, size_t len)
{
	const char *key;
	size_t		keylen;
	const char *p;
	const char *vstart;
	const char *vend;

	if (ep->paging != USAGE_PAGING_NEXTLINK || ep->next_link[0] != '/' ||
		strpbrk(ep->next_link + 1, "/~\"\\") != NULL)
		return NULL;
	key = ep->next_link + 1;
	keylen = strlen(key);

	/* the closing brace of the body */
	p = skip_space_back(data, data + len);
	if (p == data || p[-1] != '}')
		return NULL;
	/* the value: a string with no backslash or control character */
	p = skip_space_back(data, p - 1);
	if (p == data || p[-1] != '"')
		return NULL;
	vend = vstart = p - 1;
	while (vstart > data && vstart[-1] != '"')
	{
		if (vstart[-1] == '\\' || (unsigned char) vstart[-1] < 0x20)
			return NULL;
		vstart--;
	}
	if (vstart == data)
		return NULL;
	/* the colon, and the member name */
	p = skip_space_back(data, vstart - 1);
	if (p == data || p[-1] != ':')
		return NULL;
	p = skip_space_back(data, p - 1);
	if ((size_t) (p - data) < keylen + 2 || p[-1] != '"' ||
		p[-2 - (ssize_t) keylen] != '"' ||
		memcmp(p - 1 - keylen, key, keylen) != 0)
		return NULL;
	/* the member starts the object or follows another */
	p = skip_space_back(data, p - 2 - keylen);
	if (p == data || (p[-1] != ',' && p[-1] != '{'))
		return NULL;
	if (vend == vstart)
		return NULL;
	return pnstrdup(vstart, vend - vstart);
}
