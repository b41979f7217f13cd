/*-------------------------------------------------------------------------
 *
 * json_get.c
 *		  One string member of a small JSON body: an API's error text, a
 *		  token response's access_token.
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
