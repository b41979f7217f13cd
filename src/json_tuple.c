/*-------------------------------------------------------------------------
 *
 * json_tuple.c
 *		  Response bodies to column values, read as the bytes arrive.
 *
 * A row parser is fed a page's body in pieces (usage_row_parser_feed) and
 * hands out one row at a time (usage_row_parser_next), so that neither the
 * body nor its rows need to be in memory at once: what it holds is the
 * bytes not yet read plus, while a row is being read, that row's text.
 *
 * The tokens come from PostgreSQL's own lexer (json_lex), run without
 * de-escaping (punctuation and strings with no escape or control character
 * are recognized inline: json_lex would return just those tokens): a value
 * is the raw bytes of its token, and only a string holding a backslash goes
 * through a second lexer that de-escapes it (so
 * escapes, surrogate pairs and invalid input behave exactly as PostgreSQL's
 * parser makes them behave, in every string of the body, wanted or not).
 * The grammar is PostgreSQL's recursive descent parser (pg_parse_json)
 * unrolled into a state machine with an explicit stack, so that it can stop
 * between any two tokens: it asks for the same tokens, in the same order,
 * runs its actions at the same moments (a scalar's after the next token is
 * read, a field's after its value's first token) and reports the same
 * errors.  t_json_property checks this against PostgreSQL's json and jsonb.
 *
 * The actions follow the endpoint's JSON pointers to the rows array and to
 * the next page's link, pick a top-level totalCount, and collect each row
 * object's wanted members, one string per column; nested values of a
 * wanted key are passed on as their JSON text, and json_key '*' columns get
 * the whole item's text; columns the query does not read are not looked
 * for.  Field names are matched against the wanted keys by length and
 * bytes, without copying them.
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

#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "port/pg_bitutils.h"
#include "utils/memutils.h"

#include "usage_fdw.h"

/* a field name or string value is first looked at in its raw bytes */
#define MIN_BUFFER_SIZE 8192

/*
 * Where a JSON pointer stands while the body is read: its reference tokens,
 * and per depth whether the value being read at that depth is on the
 * pointer's path.  The value at depth d is the one at lexical level d.
 */
typedef struct PointerPath
{
	char	  **tokens;
	int		   *toklen;
	int			ntokens;
	bool	   *on_path;		/* [0..ntokens]: on_path[0] is the body */
	int		   *index;			/* [0..ntokens]: element index in an array */
} PointerPath;

/* what the grammar expects next (pg_parse_json's places, unrolled) */
typedef enum GrammarState
{
	GS_TOP,						/* the body's value */
	GS_END,						/* the end of the input */
	GS_OBJECT_FIRST,			/* after '{': a field name or '}' */
	GS_OBJECT_FIELD,			/* after ',' in an object: a field name */
	GS_OBJECT_COLON,			/* after a field name: ':' */
	GS_OBJECT_VALUE,			/* after ':': the field's value */
	GS_OBJECT_NEXT,				/* after a field's value: ',' or '}' */
	GS_ARRAY_FIRST,				/* after '[': an element or ']' */
	GS_ARRAY_ELEMENT,			/* after ',' in an array: an element */
	GS_ARRAY_NEXT,				/* after an element: ',' or ']' */
	GS_DONE
} GrammarState;

/* an action that runs once the token after its own has been read */
typedef enum PendingAction
{
	PENDING_NONE,
	PENDING_FIELD_START,		/* a field's value begins (its first token
								 * read) */
	PENDING_SCALAR,				/* a scalar value ended */
	PENDING_OBJECT_END,
	PENDING_ARRAY_END
} PendingAction;

/* one column's wanted key, for matching field names */
typedef struct WantedKey
{
	const char *key;
	int			len;
	int			col;
} WantedKey;

struct UsageRowParser
{
	JsonLexContext *lex;		/* the body's lexer, no de-escaping */
	JsonLexContext *unesc;		/* de-escapes one string token */
	const char *rows_name;		/* the rows pointer, for messages */
	UsageColumn *cols;
	int			natts;

	/* the bytes read and not yet given up */
	char	   *buf;
	size_t		len;
	size_t		cap;
	size_t		pos;			/* where the next token is looked for */
	size_t		retry_len;		/* a token cut by the end of buf: wait for
								 * this much before lexing it again */
	bool		final;			/* the rest of the body is in buf */
	uint64		total_in;		/* bytes fed */
	char		carry[4];		/* an incomplete UTF-8 character */
	int			ncarry;

	/* the current token */
	bool		have_token;
	JsonTokenType tok;
	size_t		tok_start;
	size_t		tok_end;
	bool		tok_escaped;	/* a string holding a backslash */

	/* the grammar */
	GrammarState state;
	PendingAction pending;
	char	   *stack;			/* per level: '{' or '[' */
	int			depth;
	int			maxdepth;

	/*
	 * The field name of PENDING_FIELD_START: its token.  (A start and a
	 * length: copying tok_start and tok_end as they are makes compilers load
	 * both fields, just stored, at once, which stalls.)
	 */
	size_t		name_start;
	size_t		name_len;
	bool		name_escaped;

	/* the scalar of PENDING_SCALAR: its token */
	JsonTokenType scalar_tok;
	size_t		scalar_start;
	size_t		scalar_end;
	bool		scalar_escaped;
	size_t		close_end;		/* end of the '}' or ']' of a pending end */

	/* the pointers, and the row being read */
	PointerPath rows;
	PointerPath next;
	int			item_level;		/* depth of a row object */
	bool		whole_body;		/* rows '': the body is the one row */
	bool		in_rows;		/* inside the rows array (or the row body) */
	bool		saw_items;
	bool		in_total;		/* the value of a top-level totalCount */
	bool		in_item;
	size_t		item_start;		/* offset in buf of the current item */
	bool		field_wanted;
	bool		nested_active;
	size_t		nested_start;	/* a nested value of a wanted field */
	bool	   *field_cols;		/* columns the current field feeds */
	WantedKey  *keys;
	int			nkeys;
	bool		want_whole_item;

	/* the values of the current row: offsets into arena, -1 for NULL */
	StringInfoData arena;
	int		   *voff;
	char	  **values;

	StringInfoData scratch;		/* a de-escaped string */
	UsageParseResult result;
	MemoryContext cxt;			/* the parser's memory */
	uint32		ntokens;		/* for interrupt checks */
};

/* ----------------------------------------------------------------
 *		JSON pointers
 * ----------------------------------------------------------------
 */

static void
init_path(PointerPath *pp, const char *pointer)
{
	pp->tokens = usage_json_pointer_split(pointer, &pp->ntokens);
	pp->toklen = palloc(sizeof(int) * Max(pp->ntokens, 1));
	for (int i = 0; i < pp->ntokens; i++)
		pp->toklen[i] = strlen(pp->tokens[i]);
	pp->on_path = palloc0(sizeof(bool) * (pp->ntokens + 1));
	pp->index = palloc0(sizeof(int) * (pp->ntokens + 1));
	pp->on_path[0] = true;
}

/* A member named name (len bytes) of the object at depth level - 1 begins. */
static inline void
path_field(PointerPath *pp, int level, const char *name, int len)
{
	if (level <= pp->ntokens)
		pp->on_path[level] = pp->on_path[level - 1] &&
			pp->toklen[level - 1] == len &&
			memcmp(pp->tokens[level - 1], name, len) == 0;
}

/* An array at depth level - 1 begins: its elements are counted anew. */
static inline void
path_array(PointerPath *pp, int level)
{
	if (level <= pp->ntokens)
		pp->index[level] = -1;
}

/* An element of the array at depth level - 1 begins. */
static inline void
path_element(PointerPath *pp, int level)
{
	char		digits[16];

	if (level > pp->ntokens)
		return;
	if (!pp->on_path[level - 1])
	{
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

/* ----------------------------------------------------------------
 *		Errors
 * ----------------------------------------------------------------
 */

/* A body that is not the documented shape. */
USAGE_NORETURN static void
shape_error(UsageRowParser *p, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("unexpected response shape: %s", what),
			 p->whole_body ?
			 errdetail("Expected a JSON object.") :
			 p->rows.ntokens == 1 ?
			 errdetail("Expected a JSON object with an array \"%s\" of objects.",
					   p->rows_name) :
			 errdetail("Expected a JSON object with an array of objects at \"%s\".",
					   p->rows_name)));
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

/*
 * The lexer's or the grammar's error, as an error of the response (it
 * quotes the token it stopped at, which could be a reflected secret: see
 * usage_redact_secrets).
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
 * The grammar did not expect the current token: PostgreSQL's choice of
 * error for the place (report_parse_error in jsonapi.c), where the end of
 * the input is always "ended unexpectedly".
 */
USAGE_NORETURN static void
unexpected_token(UsageRowParser *p, JsonParseErrorType at_place)
{
	/* the lexer's state as json_lex leaves it (a plain token bypassed it) */
	usage_compat_json_lexer_at(p->lex, p->buf, p->len, p->tok_end);
	p->lex->token_start = p->tok == JSON_TOKEN_END ? NULL : p->buf + p->tok_start;
	p->lex->token_type = p->tok;
	json_syntax_error(p->tok == JSON_TOKEN_END ? JSON_EXPECTED_MORE : at_place,
					  p->lex);
}

/* ----------------------------------------------------------------
 *		Tokens
 * ----------------------------------------------------------------
 */

/*
 * De-escape the string token at offset start with PostgreSQL's lexer into
 * p->scratch; an invalid escape, surrogate or character is its error.
 */
static void
unescape_token(UsageRowParser *p, size_t start)
{
	JsonParseErrorType rc;

	usage_compat_json_lexer_at(p->unesc, p->buf + start, p->len - start, 0);
	p->unesc->token_start = p->buf + start;
	rc = json_lex(p->unesc);
	if (rc != JSON_SUCCESS)
		json_syntax_error(rc, p->unesc);
	resetStringInfo(&p->scratch);
	appendBinaryStringInfo(&p->scratch, p->unesc->strval->data,
						   p->unesc->strval->len);
}

/* Where the next token starts: past blanks, as json_lex skips them. */
static size_t
skip_blanks(UsageRowParser *p)
{
	size_t		s = p->pos;

	while (s < p->len && (p->buf[s] == ' ' || p->buf[s] == '\t' ||
						  p->buf[s] == '\n' || p->buf[s] == '\r'))
		s++;
	return s;
}

/* eight bytes at once: a 1 in each byte, and in each byte's high bit */
#define BYTES_1		UINT64CONST(0x0101010101010101)
#define BYTES_80	UINT64CONST(0x8080808080808080)

/*
 * The high bit of each of the eight bytes of w that may end a plain string:
 * be '"', '\\' or a control character.  No test has a false negative, and
 * a false positive can only follow a true one: the lowest bit set marks the
 * first byte that ends the string.
 */
static inline uint64
string_stops(uint64 w)
{
	uint64		quote = w ^ (BYTES_1 * '"');
	uint64		backslash = w ^ (BYTES_1 * '\\');

	return (((w - BYTES_1 * 0x20) & ~w) |
			((quote - BYTES_1) & ~quote) |
			((backslash - BYTES_1) & ~backslash)) & BYTES_80;
}

/*
 * The offset of the first byte from s on that ends a plain string ('"',
 * '\\' or a control character), or len.
 */
static inline size_t
skip_plain(const unsigned char *b, size_t s, size_t len)
{
	for (;;)
	{
		size_t		chunk_end;

		while (s + 8 <= len)
		{
			uint64		w;
			uint64		stops;

			memcpy(&w, b + s, 8);
			stops = string_stops(w);
			if (stops != 0)
			{
#ifndef WORDS_BIGENDIAN
				return s + pg_rightmost_one_pos64(stops) / 8;
#else
				break;
#endif
			}
			s += 8;
		}
		chunk_end = Min(s + 8, len);
		for (; s < chunk_end; s++)
			if (b[s] == '"' || b[s] == '\\' || b[s] < 0x20)
				return s;
		if (s >= len)
			return len;
	}
}

/*
 * The end of the token at start when it is one whose reading is plain: a
 * punctuation mark, or a string with neither an escape nor a control
 * character, closed within the buffer.  json_lex would return exactly that
 * token, and more bytes cannot change it.  Returns 0 for any other token,
 * which is left to json_lex.
 */
static size_t
plain_token(UsageRowParser *p, size_t start, JsonTokenType *tok)
{
	const unsigned char *b = (const unsigned char *) p->buf;

	switch (b[start])
	{
		case '{':
			*tok = JSON_TOKEN_OBJECT_START;
			return start + 1;
		case '}':
			*tok = JSON_TOKEN_OBJECT_END;
			return start + 1;
		case '[':
			*tok = JSON_TOKEN_ARRAY_START;
			return start + 1;
		case ']':
			*tok = JSON_TOKEN_ARRAY_END;
			return start + 1;
		case ',':
			*tok = JSON_TOKEN_COMMA;
			return start + 1;
		case ':':
			*tok = JSON_TOKEN_COLON;
			return start + 1;
		case '"':
			{
				size_t		s = skip_plain(b, start + 1, p->len);

				if (s < p->len && b[s] == '"')
				{
					*tok = JSON_TOKEN_STRING;
					return s + 1;
				}
				return 0;
			}
		default:
			return 0;
	}
}

/*
 * Read the next token into p->tok.  Returns false when it may go on past
 * the bytes there are (more are to come): nothing is consumed then.
 */
static bool
lex_token(UsageRowParser *p)
{
	JsonParseErrorType rc;
	size_t		end;
	size_t		start = skip_blanks(p);

	if (!p->final && p->len < p->retry_len)
		return false;
	if (start < p->len && (end = plain_token(p, start, &p->tok)) > 0)
	{
		p->retry_len = 0;
		p->tok_start = start;
		p->tok_end = p->pos = end;
		p->tok_escaped = false;
		return true;
	}
	usage_compat_json_lexer_at(p->lex, p->buf, p->len, p->pos);
	rc = json_lex(p->lex);
	end = p->lex->token_terminator - p->buf;
	if (!p->final && end >= p->len)
	{
		/*
		 * Cut by the end of what came: lex it again when twice as much is
		 * in.  The blanks before it are passed (they are no token's).
		 */
		p->pos = start;
		p->retry_len = p->len + Max(p->len - start, MIN_BUFFER_SIZE);
		return false;
	}
	p->retry_len = 0;
	if (rc != JSON_SUCCESS)
	{
		/* PostgreSQL's lexer, de-escaping, may stop earlier in a string */
		if (start < p->len && p->buf[start] == '"')
			unescape_token(p, start);
		json_syntax_error(rc, p->lex);
	}
	p->tok = p->lex->token_type;
	p->tok_start = start;
	p->tok_end = end;
	p->pos = end;
	p->tok_escaped = false;
	if (p->tok == JSON_TOKEN_STRING &&
		memchr(p->buf + start + 1, '\\', end - start - 2) != NULL)
	{
		p->tok_escaped = true;
		unescape_token(p, start);
	}
	return true;
}

/* ----------------------------------------------------------------
 *		Rows
 * ----------------------------------------------------------------
 */

/* A row object begins: its values are cleared. */
static void
begin_item(UsageRowParser *p)
{
	p->in_item = true;
	p->item_start = p->tok_start;
	resetStringInfo(&p->arena);
	for (int i = 0; i < p->natts; i++)
		p->voff[i] = -1;
}

/* Keep len bytes at s as the value of column col of the current row. */
static void
set_value(UsageRowParser *p, int col, const char *s, size_t len)
{
	p->voff[col] = p->arena.len;
	enlargeStringInfo(&p->arena, len + 1);
	memcpy(p->arena.data + p->arena.len, s, len);
	p->arena.len += len + 1;
	p->arena.data[p->arena.len - 1] = '\0';
}

/* The row is complete: its values as strings. */
static char **
finish_row(UsageRowParser *p)
{
	for (int i = 0; i < p->natts; i++)
		p->values[i] = p->voff[i] < 0 ? NULL : p->arena.data + p->voff[i];
	p->result.nitems++;
	p->in_item = false;
	return p->values;
}

/* ----------------------------------------------------------------
 *		Actions: what pg_parse_json's semantic actions did
 * ----------------------------------------------------------------
 */

/*
 * Object start: the row body, the rows value (an error unless it is the
 * row body), a row, a nested value of a row's field, or the next link (an
 * error).
 */
static void
object_start(UsageRowParser *p, int level)
{
	if (path_at(&p->next, level))
		next_link_error("an object");
	if (p->whole_body && level == 0)
	{
		p->in_rows = p->saw_items = true;
		begin_item(p);
	}
	else if (path_at(&p->rows, level))
		shape_error(p, psprintf("\"%s\" is an object, not an array", p->rows_name));
	else if (p->in_rows && level == p->item_level)
		begin_item(p);
	else if (p->in_rows && level == p->item_level + 1 && p->field_wanted)
	{
		p->nested_active = true;
		p->nested_start = p->tok_start;
	}
}

/* The nested value of a wanted field ends: keep it as JSON text. */
static void
finish_nested(UsageRowParser *p)
{
	for (int i = 0; i < p->natts; i++)
		if (p->field_cols[i])
			set_value(p, i, p->buf + p->nested_start,
					  p->close_end - p->nested_start);
	p->nested_active = false;
}

/* Object end: a row is complete (returns true), or a nested value. */
static bool
object_end(UsageRowParser *p, int level)
{
	if (p->in_rows && level == p->item_level)
	{
		if (p->want_whole_item)
		{
			for (int i = 0; i < p->natts; i++)
				if (p->cols[i].kind == USAGE_COL_WHOLE_ITEM && !p->cols[i].unread)
					set_value(p, i, p->buf + p->item_start,
							  p->close_end - p->item_start);
		}
		if (p->whole_body)
			p->in_rows = false;
		return true;
	}
	if (p->in_rows && level == p->item_level + 1 && p->nested_active)
		finish_nested(p);
	return false;
}

/* Array start: the rows array, or a nested value of a row's field. */
static void
array_start(UsageRowParser *p, int level)
{
	/* a body that is an array, unless the rows pointer goes through it */
	if (level == 0 && (p->whole_body ||
					   !isdigit((unsigned char) p->rows.tokens[0][0])))
		shape_error(p, "the body is a JSON array, not an object");
	if (path_at(&p->next, level))
		next_link_error("an array");
	path_array(&p->rows, level + 1);
	path_array(&p->next, level + 1);
	if (path_at(&p->rows, level))
	{
		p->in_rows = p->saw_items = true;
		p->item_level = level + 1;
	}
	else if (p->in_rows && level == p->item_level)
		shape_error(p, psprintf("item %lld of \"%s\" is an array, not an object",
								(long long) p->result.nitems + 1, p->rows_name));
	else if (p->in_rows && level == p->item_level + 1 && p->field_wanted)
	{
		p->nested_active = true;
		p->nested_start = p->tok_start;
	}
}

/* Array end: the rows array, or a nested value of a row's field. */
static void
array_end(UsageRowParser *p, int level)
{
	if (p->in_rows && level == p->item_level - 1 && !p->whole_body)
		p->in_rows = false;
	else if (p->in_rows && level == p->item_level + 1 && p->nested_active)
		finish_nested(p);
}

/* Array element start: the pointers may go through an array. */
static void
element_start(UsageRowParser *p, int level)
{
	path_element(&p->rows, level);
	path_element(&p->next, level);
}

/*
 * Field start (the field name is the current string token): the pointers'
 * paths, and which columns a row's field feeds.
 */
static void
field_start(UsageRowParser *p, int level, const char *name, int len)
{
	if (p->in_rows && level == p->item_level + 1)
	{
		p->field_wanted = false;
		p->nested_active = false;
		memset(p->field_cols, 0, sizeof(bool) * p->natts);
		for (int k = 0; k < p->nkeys; k++)
		{
			WantedKey  *w = &p->keys[k];

			if (w->len == len && memcmp(w->key, name, len) == 0)
			{
				p->field_cols[w->col] = true;
				p->field_wanted = true;
			}
		}
	}
	path_field(&p->rows, level, name, len);
	path_field(&p->next, level, name, len);
	if (level == 1)
		p->in_total = len == 10 && memcmp(name, "totalCount", 10) == 0;
}

/*
 * The text of a string token (de-escaped when escaped) or of another
 * token, and its length; valid until the next de-escaping.
 */
static const char *
token_text(UsageRowParser *p, JsonTokenType tok, size_t start, size_t end,
		   bool escaped, size_t *len)
{
	if (tok != JSON_TOKEN_STRING)
	{
		*len = end - start;
		return p->buf + start;
	}
	if (escaped)
	{
		unescape_token(p, start);
		*len = p->scratch.len;
		return p->scratch.data;
	}
	*len = end - start - 2;
	return p->buf + start + 1;
}

/* The text of the pending scalar. */
static const char *
scalar_text(UsageRowParser *p, size_t *len)
{
	return token_text(p, p->scalar_tok, p->scalar_start, p->scalar_end,
					  p->scalar_escaped, len);
}

/* The next page's link: a non-empty string; null, "" or absent end paging. */
static void
next_link_scalar(UsageRowParser *p)
{
	size_t		len;
	const char *s;

	if (p->scalar_tok == JSON_TOKEN_NUMBER)
		next_link_error("a number");
	if (p->scalar_tok == JSON_TOKEN_TRUE || p->scalar_tok == JSON_TOKEN_FALSE)
		next_link_error("a boolean");
	if (p->scalar_tok != JSON_TOKEN_STRING)
		return;
	s = scalar_text(p, &len);
	if (len > 0)
	{
		p->result.next_link = MemoryContextAlloc(p->cxt, len + 1);
		memcpy(p->result.next_link, s, len);
		p->result.next_link[len] = '\0';
	}
}

/* A top-level totalCount, kept when an integer. */
static void
total_scalar(UsageRowParser *p)
{
	char	   *token;
	char	   *end;
	long long	v;

	if (p->scalar_tok != JSON_TOKEN_NUMBER)
		return;
	token = pnstrdup(p->buf + p->scalar_start, p->scalar_end - p->scalar_start);
	v = strtoll(token, &end, 10);
	if (*end == '\0')
	{
		p->result.has_total = true;
		p->result.total_count = v;
	}
	pfree(token);
}

/*
 * The scalar value of a row's field, for the columns it feeds: its text (a
 * string de-escaped), except that a json or jsonb column gets a string as
 * the JSON string it is, its token (the string "123" must not become the
 * number 123); JSON null is SQL NULL.
 */
static void
field_scalar(UsageRowParser *p)
{
	const char *text = NULL;
	size_t		len = 0;

	for (int i = 0; i < p->natts; i++)
	{
		Oid			typid = p->cols[i].typid;

		if (!p->field_cols[i])
			continue;
		if (p->scalar_tok == JSON_TOKEN_NULL)
			p->voff[i] = -1;
		else if (p->scalar_tok == JSON_TOKEN_STRING &&
				 (typid == JSONOID || typid == JSONBOID))
			set_value(p, i, p->buf + p->scalar_start,
					  p->scalar_end - p->scalar_start);
		else
		{
			if (text == NULL)
				text = scalar_text(p, &len);
			set_value(p, i, text, len);
		}
	}
}

/*
 * A scalar: the body itself (an error), the rows value (null: no rows),
 * a row (an error), the value of a row's field, the next link, totalCount.
 */
static void
scalar_value(UsageRowParser *p, int level)
{
	if (level == 0)
		shape_error(p, "the body is a JSON scalar, not an object");
	if (path_at(&p->next, level))
		next_link_scalar(p);
	else if (level == 1 && p->in_total)
		total_scalar(p);
	if (p->in_rows && level == p->item_level + 1)
	{
		if (p->field_wanted)
			field_scalar(p);
	}
	else if (p->in_rows && level == p->item_level)
		shape_error(p, psprintf("item %lld of \"%s\" is not an object",
								(long long) p->result.nitems + 1, p->rows_name));
	else if (path_at(&p->rows, level))
	{
		if (p->scalar_tok != JSON_TOKEN_NULL)
			shape_error(p, psprintf("\"%s\" is not an array", p->rows_name));
		p->saw_items = true;	/* null: no items */
	}
}

/*
 * Run the action that waited for the token after its own (just read).
 * Returns true when it completed a row.
 */
static bool
run_pending(UsageRowParser *p)
{
	PendingAction action = p->pending;

	p->pending = PENDING_NONE;
	switch (action)
	{
		case PENDING_NONE:
			break;
		case PENDING_FIELD_START:
			{
				size_t		len;
				const char *name = token_text(p, JSON_TOKEN_STRING,
											  p->name_start,
											  p->name_start + p->name_len,
											  p->name_escaped, &len);

				field_start(p, p->depth, name, (int) len);
				break;
			}
		case PENDING_SCALAR:
			scalar_value(p, p->depth);
			break;
		case PENDING_OBJECT_END:
			return object_end(p, p->depth);
		case PENDING_ARRAY_END:
			array_end(p, p->depth);
			break;
	}
	return false;
}

/* ----------------------------------------------------------------
 *		The grammar
 * ----------------------------------------------------------------
 */

/* After a value: what its container (or the end of the body) expects. */
static inline GrammarState
after_value(UsageRowParser *p)
{
	if (p->depth == 0)
		return GS_END;
	return p->stack[p->depth - 1] == '{' ? GS_OBJECT_NEXT : GS_ARRAY_NEXT;
}

/* A container begins: one level deeper. */
static void
push_level(UsageRowParser *p, char kind, GrammarState state)
{
	if (p->depth == p->maxdepth)
	{
		p->maxdepth *= 2;
		p->stack = repalloc(p->stack, p->maxdepth);
	}
	p->stack[p->depth++] = kind;
	p->state = state;
	p->have_token = false;
}

/* A container ends with the current token; its action waits a token. */
static void
pop_level(UsageRowParser *p, PendingAction action)
{
	p->close_end = p->tok_end;
	p->depth--;
	p->state = after_value(p);
	p->pending = action;
	p->have_token = false;
}

/* A value begins with the current token (pg_parse_json's parse_value). */
static inline void
begin_value(UsageRowParser *p)
{
	int			level = p->depth;

	switch (p->tok)
	{
		case JSON_TOKEN_OBJECT_START:
			object_start(p, level);
			push_level(p, '{', GS_OBJECT_FIRST);
			break;
		case JSON_TOKEN_ARRAY_START:
			array_start(p, level);
			push_level(p, '[', GS_ARRAY_FIRST);
			break;
		case JSON_TOKEN_STRING:
		case JSON_TOKEN_NUMBER:
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
		case JSON_TOKEN_NULL:
			p->scalar_tok = p->tok;
			p->scalar_start = p->tok_start;
			p->scalar_end = p->tok_end;
			p->scalar_escaped = p->tok_escaped;
			p->pending = PENDING_SCALAR;
			p->state = after_value(p);
			p->have_token = false;
			break;
		default:
			unexpected_token(p, JSON_EXPECTED_JSON);
	}
}

/* The current token where an object wants a field name. */
static void
take_field_name(UsageRowParser *p)
{
	if (p->tok == JSON_TOKEN_STRING)
	{
		p->name_start = p->tok_start;
		p->name_len = p->tok_end - p->tok_start;
		p->name_escaped = p->tok_escaped;
		p->state = GS_OBJECT_COLON;
		p->have_token = false;
	}
	else if (p->tok == JSON_TOKEN_OBJECT_END && p->state == GS_OBJECT_FIRST)
		pop_level(p, PENDING_OBJECT_END);
	else
		unexpected_token(p, p->state == GS_OBJECT_FIRST ?
						 JSON_EXPECTED_OBJECT_FIRST : JSON_EXPECTED_STRING);
}

/* The current token after a member's or an element's value. */
static void
take_separator(UsageRowParser *p, bool in_object)
{
	if (p->tok == JSON_TOKEN_COMMA)
	{
		p->state = in_object ? GS_OBJECT_FIELD : GS_ARRAY_ELEMENT;
		p->have_token = false;
	}
	else if (p->tok == (in_object ? JSON_TOKEN_OBJECT_END : JSON_TOKEN_ARRAY_END))
		pop_level(p, in_object ? PENDING_OBJECT_END : PENDING_ARRAY_END);
	else
		unexpected_token(p, in_object ?
						 JSON_EXPECTED_OBJECT_NEXT : JSON_EXPECTED_ARRAY_NEXT);
}

/* Take the current token where the grammar stands. */
static void
take_token(UsageRowParser *p)
{
	switch (p->state)
	{
		case GS_TOP:
		case GS_OBJECT_VALUE:
			begin_value(p);
			break;
		case GS_ARRAY_FIRST:
			if (p->tok == JSON_TOKEN_ARRAY_END)
			{
				pop_level(p, PENDING_ARRAY_END);
				break;
			}
			element_start(p, p->depth);
			begin_value(p);
			break;
		case GS_ARRAY_ELEMENT:
			element_start(p, p->depth);
			begin_value(p);
			break;
		case GS_OBJECT_FIRST:
		case GS_OBJECT_FIELD:
			take_field_name(p);
			break;
		case GS_OBJECT_COLON:
			if (p->tok != JSON_TOKEN_COLON)
				unexpected_token(p, JSON_EXPECTED_COLON);
			p->state = GS_OBJECT_VALUE;
			p->pending = PENDING_FIELD_START;
			p->have_token = false;
			break;
		case GS_OBJECT_NEXT:
			take_separator(p, true);
			break;
		case GS_ARRAY_NEXT:
			take_separator(p, false);
			break;
		case GS_END:
			if (p->tok != JSON_TOKEN_END)
				unexpected_token(p, JSON_EXPECTED_END);
			p->state = GS_DONE;
			p->have_token = false;
			break;
		case GS_DONE:
			p->have_token = false;
			break;
	}
}

/* ----------------------------------------------------------------
 *		Feeding bytes
 * ----------------------------------------------------------------
 */

/*
 * Give up the bytes nothing refers to any more: everything before the
 * current row (or, between rows, before the next token or the text a
 * pending action will read).
 */
static void
compact(UsageRowParser *p)
{
	size_t		keep = p->pos;

	if (p->in_item)
		keep = Min(keep, p->item_start);
	if (p->nested_active)
		keep = Min(keep, p->nested_start);
	if (p->pending == PENDING_SCALAR)
		keep = Min(keep, p->scalar_start);
	if (p->pending == PENDING_FIELD_START || p->state == GS_OBJECT_COLON)
		keep = Min(keep, p->name_start);
	if (keep == 0)
		return;
	memmove(p->buf, p->buf + keep, p->len - keep);
	p->len -= keep;
	p->pos -= keep;
	p->item_start -= Min(keep, p->item_start);
	p->nested_start -= Min(keep, p->nested_start);
	p->scalar_start -= Min(keep, p->scalar_start);
	p->scalar_end -= Min(keep, p->scalar_end);
	p->name_start -= Min(keep, p->name_start);
	p->tok_start -= Min(keep, p->tok_start);
	p->tok_end -= Min(keep, p->tok_end);
	p->close_end -= Min(keep, p->close_end);
	p->retry_len -= Min(keep, p->retry_len);
}

/* Append n bytes of text in the database encoding. */
static void
append_bytes(UsageRowParser *p, const char *s, size_t n)
{
	if (p->len + n + 1 > p->cap)
	{
		size_t		newcap = Max(p->cap * 2, p->len + n + 1);

		p->buf = repalloc_huge(p->buf, newcap);
		p->cap = newcap;
	}
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
}

/*
 * Could the n (< 4) bytes at s begin a UTF-8 character that the next bytes
 * complete?
 */
static bool
utf8_incomplete(const unsigned char *s, size_t n)
{
	if (pg_utf_mblen(s) <= (int) n)
		return false;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return false;
	return true;
}

/*
 * Append n bytes of the UTF-8 body: their complete characters, verified
 * and converted to the database encoding, as PostgreSQL's own conversion
 * of the whole body would (the same errors); an incomplete character at the
 * end waits for the next bytes.  Returns how many bytes were taken.
 */
static size_t
append_utf8(UsageRowParser *p, const char *s, size_t n, bool final)
{
	int			valid = pg_encoding_verifymbstr(PG_UTF8, s, (int) n);
	size_t		rest = n - valid;

	if (valid > 0)
	{
		if (GetDatabaseEncoding() == PG_UTF8)
			append_bytes(p, s, valid);
		else
		{
			char	   *conv = pg_any_to_server(s, valid, PG_UTF8);

			append_bytes(p, conv, strlen(conv));
			if (conv != s)
				pfree(conv);
		}
	}
	if (rest == 0 ||
		(!final && rest < 4 && utf8_incomplete((const unsigned char *) s + valid, rest)))
		return valid;
	/* invalid: PostgreSQL's own error for the bytes there */
	(void) pg_any_to_server(s + valid, (int) rest, PG_UTF8);
	elog(ERROR, "invalid UTF-8 in API response not reported");
	return valid;				/* keep compiler quiet */
}

/*
 * Feed the next len bytes of the body (final: they are the last).  The
 * rows they complete are then had from usage_row_parser_next().
 */
void
usage_row_parser_feed(UsageRowParser *p, const char *data, size_t len,
					  bool final)
{
	Assert(!p->final);
	compact(p);
	p->total_in += len;
	if (final && p->total_in == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("empty body in API response")));

	/* complete a character cut by the previous piece */
	while (p->ncarry > 0 && len > 0)
	{
		p->carry[p->ncarry++] = *data++;
		len--;
		if (p->ncarry == pg_utf_mblen((unsigned char *) p->carry) ||
			p->ncarry == sizeof(p->carry))
		{
			(void) append_utf8(p, p->carry, p->ncarry, true);
			p->ncarry = 0;
		}
	}
	if (p->ncarry > 0 && final)
		(void) append_utf8(p, p->carry, p->ncarry, true);
	if (len > 0)
	{
		size_t		taken = append_utf8(p, data, len, final);

		p->ncarry = len - taken;
		memcpy(p->carry, data + taken, p->ncarry);
	}
	p->final = final;
}

/* ----------------------------------------------------------------
 *		The parser
 * ----------------------------------------------------------------
 */

/* The wanted keys of the columns: each response column's key and alt_key. */
static void
init_keys(UsageRowParser *p)
{
	p->keys = palloc(sizeof(WantedKey) * Max(2 * p->natts, 1));
	for (int i = 0; i < p->natts; i++)
	{
		UsageColumn *c = &p->cols[i];

		if (c->unread)
			continue;
		if (c->kind == USAGE_COL_WHOLE_ITEM)
			p->want_whole_item = true;
		if (c->kind != USAGE_COL_RESPONSE)
			continue;
		p->keys[p->nkeys++] = (WantedKey)
		{
			c->key, strlen(c->key), i
		};
		if (c->alt_key)
			p->keys[p->nkeys++] = (WantedKey)
			{
				c->alt_key, strlen(c->alt_key), i
			};
	}
}

/*
 * A parser of one response body of endpoint ep, for the columns cols.  It
 * lives in the current memory context (reset it to free it).
 */
UsageRowParser *
usage_row_parser_create(const UsageEndpoint *ep, UsageColumn *cols, int natts)
{
	UsageRowParser *p = palloc0(sizeof(UsageRowParser));

	p->cxt = CurrentMemoryContext;
	init_path(&p->rows, ep->rows);
	init_path(&p->next, ep->paging == USAGE_PAGING_NEXTLINK ? ep->next_link : "");
	if (ep->paging != USAGE_PAGING_NEXTLINK)
		p->next.ntokens = -1;	/* never at the next link */
	p->whole_body = p->rows.ntokens == 0;
	p->rows_name = p->rows.ntokens == 1 ? p->rows.tokens[0] : ep->rows;
	p->cols = cols;
	p->natts = natts;
	p->values = palloc0(sizeof(char *) * Max(natts, 1));
	p->voff = palloc(sizeof(int) * Max(natts, 1));
	p->field_cols = palloc0(sizeof(bool) * Max(natts, 1));
	init_keys(p);
	initStringInfo(&p->arena);
	initStringInfo(&p->scratch);
	p->cap = MIN_BUFFER_SIZE;
	p->buf = palloc(p->cap);
	p->buf[0] = '\0';
	p->maxdepth = 32;
	p->stack = palloc(p->maxdepth);
	p->state = GS_TOP;
	p->lex = usage_compat_json_lexer(p->buf, 0, GetDatabaseEncoding(), false);
	p->unesc = usage_compat_json_lexer(p->buf, 0, GetDatabaseEncoding(), true);
	return p;
}

/*
 * The next row of the body: USAGE_PARSE_ROW with *values set to one string
 * per column (NULL for JSON null or a missing key; echo columns are left
 * NULL for the caller to fill), valid until the next call;
 * USAGE_PARSE_MORE when the bytes fed so far hold no further row; or
 * USAGE_PARSE_DONE at the end of the body, whose link and total are then
 * in usage_row_parser_result().
 */
UsageParseStep
usage_row_parser_next(UsageRowParser *p, char ***values)
{
	for (;;)
	{
		if (!p->have_token)
		{
			if (p->state == GS_DONE)
				break;
			if ((++p->ntokens & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
			if (!lex_token(p))
				return USAGE_PARSE_MORE;
			p->have_token = true;
			if (p->pending != PENDING_NONE && run_pending(p))
			{
				*values = finish_row(p);
				return USAGE_PARSE_ROW;
			}
		}
		take_token(p);
	}
	if (!p->saw_items)
		shape_error(p, p->rows.ntokens == 1 ?
					psprintf("no \"%s\" array", p->rows_name) :
					psprintf("no array at \"%s\"", p->rows_name));
	return USAGE_PARSE_DONE;
}

/* What a body that is done said besides its rows. */
const UsageParseResult *
usage_row_parser_result(UsageRowParser *p)
{
	return &p->result;
}
