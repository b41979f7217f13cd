/*-------------------------------------------------------------------------
 *
 * json_tuple.c
 *		  Response bodies to column values, with PostgreSQL's own JSON parser.
 *
 * pg_parse_json() walks the body once; the semantic actions below pick the
 * top-level members that matter (the items array, nextLink, totalCount) and
 * hand each item of the array to the caller as one string per column, as
 * soon as the item's closing brace is seen.  Nested values of a wanted key
 * are passed on as their JSON text, and json_key '*' columns get the whole
 * item's text.  No jsonb or other intermediate tree is built.
 *
 * Anything that is not the documented shape (a body that is not an object,
 * items that are not objects, a missing items array) is an error: a scan
 * never guesses.
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


/* the member of the top-level object being read */
typedef enum TopField
{
	TOP_OTHER,
	TOP_ITEMS,
	TOP_NEXTLINK,
	TOP_TOTAL
} TopField;

/* semantic state of usage_parse_response */
typedef struct ItemParseState
{
	JsonLexContext *lex;
	const char *items_key;
	UsageColumn *cols;
	int			natts;
	usage_item_callback callback;
	void	   *arg;
	UsageParseResult *result;

	TopField	top_field;		/* member of the top object being read */
	bool		saw_items;
	char	  **values;			/* per column, for the current item */
	bool	   *field_cols;		/* columns the current item field feeds */
	bool		field_wanted;
	const char *nested_start;	/* start of a nested value of a wanted field */
	const char *item_start;		/* start of the current item's text */
	bool		want_whole_item;
} ItemParseState;

/* A body that is not the documented shape. */
USAGE_NORETURN static void
shape_error(ItemParseState *st, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("unexpected response shape: %s", what),
			 errdetail("Expected a JSON object with an array \"%s\" of objects.",
					   st->items_key)));
}

/*
 * A nextLink that is neither a string nor null: paging cannot go on, and
 * ending it silently would return part of the rows.
 */
USAGE_NORETURN static void
next_link_error(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("unexpected response shape: \"nextLink\" is %s, not a string", what),
			 errdetail("A nextLink must be an absolute URL, or empty, null or absent on the last page.")));
}

/*
 * Object start: at level 1 the value of a top-level member, at level 2 an
 * item, at level 3 a nested value of an item's field.
 */
static USAGE_JSON_ACTION
item_object_start(void *state)
{
	ItemParseState *st = (ItemParseState *) state;
	int			level = st->lex->lex_level;

	if (level == 1 && st->top_field == TOP_NEXTLINK)
		next_link_error("an object");
	if (level == 1 && st->top_field == TOP_ITEMS)
		shape_error(st, psprintf("\"%s\" is an object, not an array", st->items_key));
	if (level == 2 && st->top_field == TOP_ITEMS)
	{
		/* a new item */
		st->item_start = st->lex->token_start;
		for (int i = 0; i < st->natts; i++)
			st->values[i] = NULL;
	}
	else if (level == 3 && st->top_field == TOP_ITEMS && st->field_wanted)
		st->nested_start = st->lex->token_start;
	USAGE_JSON_ACTION_DONE;
}

/* The nested value of a wanted field ends: keep it as JSON text. */
static void
finish_nested(ItemParseState *st)
{
	const char *end = st->lex->prev_token_terminator;
	char	   *text = pnstrdup(st->nested_start, end - st->nested_start);

	for (int i = 0; i < st->natts; i++)
		if (st->field_cols[i])
			st->values[i] = text;
	st->nested_start = NULL;
}

/* Object end: an item is complete (level 2), or a nested value (3). */
static USAGE_JSON_ACTION
item_object_end(void *state)
{
	ItemParseState *st = (ItemParseState *) state;
	int			level = st->lex->lex_level;

	if (level == 2 && st->top_field == TOP_ITEMS)
	{
		if (st->want_whole_item)
		{
			char	   *text = pnstrdup(st->item_start,
										st->lex->prev_token_terminator - st->item_start);

			for (int i = 0; i < st->natts; i++)
				if (st->cols[i].kind == USAGE_COL_WHOLE_ITEM)
					st->values[i] = text;
		}
		st->callback(st->arg, st->values);
		st->result->nitems++;
	}
	else if (level == 3 && st->top_field == TOP_ITEMS && st->nested_start)
		finish_nested(st);
	USAGE_JSON_ACTION_DONE;
}

/* Array start: the items array, or a nested value of an item's field. */
static USAGE_JSON_ACTION
item_array_start(void *state)
{
	ItemParseState *st = (ItemParseState *) state;
	int			level = st->lex->lex_level;

	if (level == 0)
		shape_error(st, "the body is a JSON array, not an object");
	if (level == 1 && st->top_field == TOP_NEXTLINK)
		next_link_error("an array");
	if (level == 1 && st->top_field == TOP_ITEMS)
		st->saw_items = true;
	else if (level == 2 && st->top_field == TOP_ITEMS)
		shape_error(st, psprintf("item %lld of \"%s\" is an array, not an object",
								 (long long) st->result->nitems + 1, st->items_key));
	else if (level == 3 && st->top_field == TOP_ITEMS && st->field_wanted)
		st->nested_start = st->lex->token_start;
	USAGE_JSON_ACTION_DONE;
}

/* Array end: a nested value of an item's field may be complete. */
static USAGE_JSON_ACTION
item_array_end(void *state)
{
	ItemParseState *st = (ItemParseState *) state;

	if (st->lex->lex_level == 3 && st->top_field == TOP_ITEMS && st->nested_start)
		finish_nested(st);
	USAGE_JSON_ACTION_DONE;
}

/*
 * Field start: which top-level member is being read (level 1), or which
 * columns an item's field feeds (level 3).
 */
static USAGE_JSON_ACTION
item_field_start(void *state, char *fname, bool isnull)
{
	ItemParseState *st = (ItemParseState *) state;
	int			level = st->lex->lex_level;

	if (level == 1)
	{
		if (strcmp(fname, st->items_key) == 0)
			st->top_field = TOP_ITEMS;
		else if (strcmp(fname, "nextLink") == 0)
			st->top_field = TOP_NEXTLINK;
		else if (strcmp(fname, "totalCount") == 0)
			st->top_field = TOP_TOTAL;
		else
			st->top_field = TOP_OTHER;
	}
	else if (level == 3 && st->top_field == TOP_ITEMS)
	{
		st->field_wanted = false;
		st->nested_start = NULL;
		for (int i = 0; i < st->natts; i++)
		{
			UsageColumn *c = &st->cols[i];
			bool		match = c->kind == USAGE_COL_RESPONSE &&
				(strcmp(c->key, fname) == 0 ||
				 (c->alt_key && strcmp(c->alt_key, fname) == 0));

			st->field_cols[i] = match;
			if (match)
				st->field_wanted = true;
		}
	}
	pfree(fname);
	USAGE_JSON_ACTION_DONE;
}

/*
 * A scalar value of a top-level member: the items array may be null,
 * nextLink must be a string or null, totalCount is kept when an integer.
 * Takes over token.
 */
static void
top_scalar(ItemParseState *st, char *token, JsonTokenType tokentype)
{
	switch (st->top_field)
	{
		case TOP_ITEMS:
			if (tokentype != JSON_TOKEN_NULL)
				shape_error(st, psprintf("\"%s\" is not an array", st->items_key));
			st->saw_items = true;	/* null: no items */
			break;
		case TOP_NEXTLINK:
			if (tokentype == JSON_TOKEN_STRING && token[0] != '\0')
			{
				st->result->next_link = token;
				return;
			}
			else if (tokentype == JSON_TOKEN_NUMBER)
				next_link_error("a number");
			else if (tokentype == JSON_TOKEN_TRUE || tokentype == JSON_TOKEN_FALSE)
				next_link_error("a boolean");
			break;
		case TOP_TOTAL:
			if (tokentype == JSON_TOKEN_NUMBER)
			{
				char	   *end;
				long long	v = strtoll(token, &end, 10);

				if (*end == '\0')
				{
					st->result->has_total = true;
					st->result->total_count = v;
				}
			}
			break;
		default:
			break;
	}
	if (token)
		pfree(token);
}

/*
 * A scalar: the body itself (an error), a top-level member's value, an item
 * (an error), or the value of an item's field.
 */
static USAGE_JSON_ACTION
item_scalar(void *state, char *token, JsonTokenType tokentype)
{
	ItemParseState *st = (ItemParseState *) state;
	int			level = st->lex->lex_level;

	if (level == 0)
		shape_error(st, "the body is a JSON scalar, not an object");

	if (level == 1)
	{
		top_scalar(st, token, tokentype);
		USAGE_JSON_ACTION_DONE;
	}

	if (st->top_field == TOP_ITEMS)
	{
		if (level == 2)
			shape_error(st, psprintf("item %lld of \"%s\" is not an object",
									 (long long) st->result->nitems + 1, st->items_key));
		if (level == 3 && st->field_wanted)
		{
			char	   *v = (tokentype == JSON_TOKEN_NULL) ? NULL : token;

			for (int i = 0; i < st->natts; i++)
				if (st->field_cols[i])
					st->values[i] = v;
			if (v == NULL)
				pfree(token);
			USAGE_JSON_ACTION_DONE;
		}
	}
	pfree(token);
	USAGE_JSON_ACTION_DONE;
}

/* A lexer over body, in the database encoding, with field names kept. */
static JsonLexContext *
make_lexer(const char *body, size_t len)
{
	return usage_compat_json_lexer(body, len, GetDatabaseEncoding());
}

/*
 * The parser's error, as an error of the response (it quotes the token it
 * stopped at, which could be a reflected secret: see usage_redact_secrets).
 */
USAGE_NORETURN static void
json_syntax_error(JsonParseErrorType rc, JsonLexContext *lex)
{
	char	   *detail = json_errdetail(rc, lex);
	size_t		len;

	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("malformed JSON in API response"),
			 errdetail("%s", usage_redact_secrets(detail, strlen(detail), &len))));
}

/*
 * Parse one response body.  For each item of the array items_key, callback
 * gets one string per column of cols (NULL for JSON null or a missing key;
 * echo columns are left NULL for the caller to fill).  The strings are
 * palloc'd in the current memory context.
 */
void
usage_parse_response(const char *body, size_t len, const char *items_key,
					 UsageColumn *cols, int natts,
					 usage_item_callback callback, void *arg,
					 UsageParseResult *result)
{
	ItemParseState st;
	JsonSemAction sem;
	JsonParseErrorType rc;
	char	   *text;

	memset(result, 0, sizeof(UsageParseResult));
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("empty body in API response")));

	/* JSON is UTF-8; verify it (and convert to the database encoding) */
	text = pg_any_to_server(body, (int) len, PG_UTF8);
	if (text != body)
		len = strlen(text);

	memset(&st, 0, sizeof(st));
	st.lex = make_lexer(text, len);
	st.items_key = items_key;
	st.cols = cols;
	st.natts = natts;
	st.callback = callback;
	st.arg = arg;
	st.result = result;
	st.values = palloc0(sizeof(char *) * Max(natts, 1));
	st.field_cols = palloc0(sizeof(bool) * Max(natts, 1));
	for (int i = 0; i < natts; i++)
		if (cols[i].kind == USAGE_COL_WHOLE_ITEM)
			st.want_whole_item = true;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = item_object_start;
	sem.object_end = item_object_end;
	sem.array_start = item_array_start;
	sem.array_end = item_array_end;
	sem.object_field_start = item_field_start;
	sem.scalar = item_scalar;

	rc = pg_parse_json(st.lex, &sem);
	if (rc != JSON_SUCCESS)
		json_syntax_error(rc, st.lex);
	if (!st.saw_items)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("unexpected response shape: no \"%s\" array", items_key),
				 errdetail("Expected a JSON object with an array \"%s\" of objects.",
						   items_key)));
}

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
	st.lex = make_lexer(body, len);

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
