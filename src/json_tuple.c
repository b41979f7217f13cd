/*-------------------------------------------------------------------------
 *
 * json_tuple.c
 *		  Response bodies to column values, with PostgreSQL's own JSON parser.
 *
 * pg_parse_json() walks the body once; the semantic actions below follow
 * the endpoint's JSON pointers to the rows array and to the next page's
 * link (and pick a top-level totalCount), and hand each row object to the
 * caller as one string per column, as soon as its closing brace is seen.  Nested values of a wanted key
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

#include <ctype.h>

#include "common/jsonapi.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "usage_fdw.h"


/*
 * Where a JSON pointer stands while the body is read: its reference tokens,
 * and per depth whether the value being read at that depth is on the
 * pointer's path.  The value at depth d is the one lex_level d reports.
 */
typedef struct PointerPath
{
	char	  **tokens;
	int			ntokens;
	bool	   *on_path;		/* [0..ntokens]: on_path[0] is the body */
	int		   *index;			/* [0..ntokens]: element index in an array */
} PointerPath;

/* semantic state of usage_parse_response */
typedef struct ItemParseState
{
	JsonLexContext *lex;
	const char *rows_name;		/* the rows pointer, for messages */
	UsageColumn *cols;
	int			natts;
	usage_item_callback callback;
	void	   *arg;
	UsageParseResult *result;

	PointerPath rows;			/* where the rows are */
	PointerPath next;			/* where the next page's link is */
	int			item_level;		/* depth of a row object */
	bool		whole_body;		/* rows '': the body is the one row */
	bool		in_rows;		/* inside the rows array (or the row body) */
	bool		saw_items;
	bool		in_total;		/* the value of a top-level totalCount */
	char	  **values;			/* per column, for the current item */
	bool	   *field_cols;		/* columns the current item field feeds */
	bool		field_wanted;
	const char *nested_start;	/* start of a nested value of a wanted field */
	const char *item_start;		/* start of the current item's text */
	bool		want_whole_item;
} ItemParseState;

static void
init_path(PointerPath *pp, const char *pointer)
{
	pp->tokens = usage_json_pointer_split(pointer, &pp->ntokens);
	pp->on_path = palloc0(sizeof(bool) * (pp->ntokens + 1));
	pp->index = palloc0(sizeof(int) * (pp->ntokens + 1));
	pp->on_path[0] = true;
}

/* A member named fname of the object at depth level - 1 begins. */
static inline void
path_field(PointerPath *pp, int level, const char *fname)
{
	if (level <= pp->ntokens)
		pp->on_path[level] = pp->on_path[level - 1] &&
			strcmp(pp->tokens[level - 1], fname) == 0;
}

/* An array at depth level - 1 begins: its elements are counted anew. */
static inline void
path_array(PointerPath *pp, int level)
{
	if (level <= pp->ntokens)
		pp->index[level] = -1;
}

/* An element of the array at depth level - 1 begins. */
static void
path_element(PointerPath *pp, int level)
{
	char		digits[16];

	if (level > pp->ntokens || !pp->on_path[level - 1])
	{
		if (level <= pp->ntokens)
			pp->on_path[level] = false;
		return;
	}
	snprintf(digits, sizeof(digits), "%d", ++pp->index[level]);
	pp->on_path[level] = strcmp(pp->tokens[level - 1], digits) == 0;
}

/* Is the value now starting at depth level the one the pointer names? */
static inline bool
path_at(PointerPath *pp, int level)
{
	return level == pp->ntokens && pp->on_path[level];
}

/* A body that is not the documented shape. */
USAGE_NORETURN static void
shape_error(ItemParseState *st, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("unexpected response shape: %s", what),
			 st->whole_body ?
			 errdetail("Expected a JSON object.") :
			 st->rows.ntokens == 1 ?
			 errdetail("Expected a JSON object with an array \"%s\" of objects.",
					   st->rows_name) :
			 errdetail("Expected a JSON object with an array of objects at \"%s\".",
					   st->rows_name)));
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
			 errdetail("A nextLink must be a URL, or empty, null or absent on the last page.")));
}

/* A row object begins: its values are cleared. */
static void
begin_item(ItemParseState *st)
{
	st->item_start = st->lex->token_start;
	for (int i = 0; i < st->natts; i++)
		st->values[i] = NULL;
}

/*
 * Object start: the row body, the rows value (an error unless it is the
 * row body), a row, a nested value of a row's field, or the next link (an
 * error).
 */
static USAGE_JSON_ACTION
item_object_start(void *state)
{
	ItemParseState *st = (ItemParseState *) state;
	int			level = st->lex->lex_level;

	if (path_at(&st->next, level))
		next_link_error("an object");
	if (st->whole_body && level == 0)
	{
		st->in_rows = st->saw_items = true;
		begin_item(st);
	}
	else if (path_at(&st->rows, level))
		shape_error(st, psprintf("\"%s\" is an object, not an array", st->rows_name));
	else if (st->in_rows && level == st->item_level)
		begin_item(st);
	else if (st->in_rows && level == st->item_level + 1 && st->field_wanted)
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

/* Object end: a row is complete, or a nested value. */
static USAGE_JSON_ACTION
item_object_end(void *state)
{
	ItemParseState *st = (ItemParseState *) state;
	int			level = st->lex->lex_level;

	if (st->in_rows && level == st->item_level)
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
		if (st->whole_body)
			st->in_rows = false;
	}
	else if (st->in_rows && level == st->item_level + 1 && st->nested_start)
		finish_nested(st);
	USAGE_JSON_ACTION_DONE;
}

/* Array start: the rows array, or a nested value of a row's field. */
static USAGE_JSON_ACTION
item_array_start(void *state)
{
	ItemParseState *st = (ItemParseState *) state;
	int			level = st->lex->lex_level;

	/* a body that is an array, unless the rows pointer goes through it */
	if (level == 0 && (st->whole_body ||
					   !isdigit((unsigned char) st->rows.tokens[0][0])))
		shape_error(st, "the body is a JSON array, not an object");
	if (path_at(&st->next, level))
		next_link_error("an array");
	path_array(&st->rows, level + 1);
	path_array(&st->next, level + 1);
	if (path_at(&st->rows, level))
	{
		st->in_rows = st->saw_items = true;
		st->item_level = level + 1;
	}
	else if (st->in_rows && level == st->item_level)
		shape_error(st, psprintf("item %lld of \"%s\" is an array, not an object",
								 (long long) st->result->nitems + 1, st->rows_name));
	else if (st->in_rows && level == st->item_level + 1 && st->field_wanted)
		st->nested_start = st->lex->token_start;
	USAGE_JSON_ACTION_DONE;
}

/* Array end: the rows array, or a nested value of a row's field. */
static USAGE_JSON_ACTION
item_array_end(void *state)
{
	ItemParseState *st = (ItemParseState *) state;
	int			level = st->lex->lex_level;

	if (st->in_rows && level == st->item_level - 1 && !st->whole_body)
		st->in_rows = false;
	else if (st->in_rows && level == st->item_level + 1 && st->nested_start)
		finish_nested(st);
	USAGE_JSON_ACTION_DONE;
}

/* Array element start: the pointers may go through an array. */
static USAGE_JSON_ACTION
item_element_start(void *state, bool isnull)
{
	ItemParseState *st = (ItemParseState *) state;
	int			level = st->lex->lex_level;

	if (level <= st->rows.ntokens)
		path_element(&st->rows, level);
	if (level <= st->next.ntokens)
		path_element(&st->next, level);
	USAGE_JSON_ACTION_DONE;
}

/*
 * Field start: the pointers' paths, and which columns a row's field feeds.
 */
static USAGE_JSON_ACTION
item_field_start(void *state, char *fname, bool isnull)
{
	ItemParseState *st = (ItemParseState *) state;
	int			level = st->lex->lex_level;

	if (st->in_rows && level == st->item_level + 1)
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
	path_field(&st->rows, level, fname);
	path_field(&st->next, level, fname);
	if (level == 1)
		st->in_total = strcmp(fname, "totalCount") == 0;
	pfree(fname);
	USAGE_JSON_ACTION_DONE;
}

/* The next page's link: a non-empty string; null, "" or absent end paging. */
static void
next_link_scalar(ItemParseState *st, char *token, JsonTokenType tokentype)
{
	if (tokentype == JSON_TOKEN_STRING && token[0] != '\0')
		st->result->next_link = pstrdup(token);
	else if (tokentype == JSON_TOKEN_NUMBER)
		next_link_error("a number");
	else if (tokentype == JSON_TOKEN_TRUE || tokentype == JSON_TOKEN_FALSE)
		next_link_error("a boolean");
}

/* A top-level totalCount, kept when an integer. */
static void
total_scalar(ItemParseState *st, char *token, JsonTokenType tokentype)
{
	char	   *end;
	long long	v;

	if (tokentype != JSON_TOKEN_NUMBER)
		return;
	v = strtoll(token, &end, 10);
	if (*end == '\0')
	{
		st->result->has_total = true;
		st->result->total_count = v;
	}
}

/*
 * The scalar value of a row's field, for the columns it feeds: its text (a
 * string de-escaped), except that a json or jsonb column gets a string as
 * the JSON string it is (the string "123" must not become the number 123);
 * JSON null is SQL NULL.  Takes over token.
 */
static void
field_scalar(ItemParseState *st, char *token, JsonTokenType tokentype)
{
	char	   *quoted = NULL;

	if (tokentype == JSON_TOKEN_NULL)
	{
		if (token)
			pfree(token);
		token = NULL;
	}
	for (int i = 0; i < st->natts; i++)
	{
		Oid			typid = st->cols[i].typid;

		if (!st->field_cols[i])
			continue;
		if (tokentype == JSON_TOKEN_STRING &&
			(typid == JSONOID || typid == JSONBOID))
		{
			if (quoted == NULL)
			{
				StringInfoData buf;

				initStringInfo(&buf);
				escape_json(&buf, token);
				quoted = buf.data;
			}
			st->values[i] = quoted;
		}
		else
			st->values[i] = token;
	}
}

/*
 * A scalar: the body itself (an error), the rows value (null: no rows),
 * a row (an error), the value of a row's field, the next link, totalCount.
 */
static USAGE_JSON_ACTION
item_scalar(void *state, char *token, JsonTokenType tokentype)
{
	ItemParseState *st = (ItemParseState *) state;
	int			level = st->lex->lex_level;

	if (level == 0)
		shape_error(st, "the body is a JSON scalar, not an object");
	if (path_at(&st->next, level))
		next_link_scalar(st, token, tokentype);
	else if (level == 1 && st->in_total)
		total_scalar(st, token, tokentype);
	if (st->in_rows && level == st->item_level + 1)
	{
		if (st->field_wanted)
		{
			field_scalar(st, token, tokentype);
			token = NULL;		/* kept, or freed */
		}
	}
	else if (st->in_rows && level == st->item_level)
		shape_error(st, psprintf("item %lld of \"%s\" is not an object",
								 (long long) st->result->nitems + 1, st->rows_name));
	else if (path_at(&st->rows, level))
	{
		if (tokentype != JSON_TOKEN_NULL)
			shape_error(st, psprintf("\"%s\" is not an array", st->rows_name));
		st->saw_items = true;	/* null: no items */
	}
	if (token)
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

/* Set up the parse state of one body for the endpoint's pointers. */
static void
init_state(ItemParseState *st, const UsageEndpoint *ep, UsageColumn *cols,
		   int natts)
{
	memset(st, 0, sizeof(ItemParseState));
	init_path(&st->rows, ep->rows);
	init_path(&st->next, ep->paging == USAGE_PAGING_NEXTLINK ? ep->next_link : "");
	if (ep->paging != USAGE_PAGING_NEXTLINK)
		st->next.ntokens = -1;	/* never at the next link */
	st->whole_body = st->rows.ntokens == 0;
	st->item_level = 0;
	st->rows_name = st->rows.ntokens == 1 ? st->rows.tokens[0] : ep->rows;
	st->cols = cols;
	st->natts = natts;
	st->values = palloc0(sizeof(char *) * Max(natts, 1));
	st->field_cols = palloc0(sizeof(bool) * Max(natts, 1));
	for (int i = 0; i < natts; i++)
		if (cols[i].kind == USAGE_COL_WHOLE_ITEM)
			st->want_whole_item = true;
}

/*
 * Parse one response body of endpoint ep.  For each row (each object of the
 * array at ep->rows, or the whole body when ep->rows is ""), callback gets
 * one string per column of cols (NULL for JSON null or a missing key; echo
 * columns are left NULL for the caller to fill).  The strings are palloc'd
 * in the current memory context.
 */
void
usage_parse_response(const char *body, size_t len, const UsageEndpoint *ep,
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

	init_state(&st, ep, cols, natts);
	st.lex = make_lexer(text, len);
	st.callback = callback;
	st.arg = arg;
	st.result = result;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = item_object_start;
	sem.object_end = item_object_end;
	sem.array_start = item_array_start;
	sem.array_end = item_array_end;
	sem.array_element_start = item_element_start;
	sem.object_field_start = item_field_start;
	sem.scalar = item_scalar;

	rc = pg_parse_json(st.lex, &sem);
	if (rc != JSON_SUCCESS)
		json_syntax_error(rc, st.lex);
	if (!st.saw_items)
		shape_error(&st, st.rows.ntokens == 1 ?
					psprintf("no \"%s\" array", st.rows_name) :
					psprintf("no array at \"%s\"", st.rows_name));
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
