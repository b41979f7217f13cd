/*-------------------------------------------------------------------------
 *
 * redact.c
 *		  The API's text as it may reach a message: valid in the database
 *		  encoding whatever the server sent, clipped, and with every secret
 *		  of the requests under way redacted (a server that reflects a
 *		  request back would otherwise show a client secret or a bearer
 *		  token to any role using the mapping).
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "mb/pg_wchar.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "http_int.h"

/*
 * The secrets of the requests of this transaction (credentials of the user
 * mappings, bearer tokens), each in the forms a server may reflect it in:
 * as sent, URL- or form-encoded, JSON-escaped.  malloc'd; overwritten and
 * freed at transaction end.
 */
static char **secret_forms = NULL;
static int	nsecret_forms = 0;
static int	maxsecret_forms = 0;
static size_t longest_secret_form = 0;

/* ----------------------------------------------------------------
 *		Secrets to redact
 * ----------------------------------------------------------------
 */

/* Remember one form of a secret (once). */
static void
add_secret_form(const char *form)
{
	char	   *copy;

	for (int i = 0; i < nsecret_forms; i++)
	{
		if (strcmp(secret_forms[i], form) == 0)
			return;
	}
	if (nsecret_forms == maxsecret_forms)
	{
		int			newmax = Max(8, maxsecret_forms * 2);
		char	  **n = realloc(secret_forms, sizeof(char *) * newmax);

		if (n == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		secret_forms = n;
		maxsecret_forms = newmax;
	}
	copy = strdup(form);
	if (copy == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	secret_forms[nsecret_forms++] = copy;
	longest_secret_form = Max(longest_secret_form, strlen(copy));
}

/* Overwrite and forget every secret (transaction end). */
void
usage_http_forget_secrets(void)
{
	for (int i = 0; i < nsecret_forms; i++)
	{
		explicit_bzero(secret_forms[i], strlen(secret_forms[i]));
		free(secret_forms[i]);
	}
	nsecret_forms = 0;
	longest_secret_form = 0;
}

/* Lower-case the hexadecimal digits of %XX escapes. */
static char *
lower_hex_escapes(const char *s)
{
	char	   *r = pstrdup(s);

	for (char *p = r; *p; p++)
	{
		if (*p == '%' && p[1] && p[2])
		{
			p[1] = pg_tolower((unsigned char) p[1]);
			p[2] = pg_tolower((unsigned char) p[2]);
			p += 2;
		}
	}
	return r;
}

/* Append the JSON escape \uXXXX of UTF-16 code unit c. */
static void
append_u_escape(StringInfo out, pg_wchar c, bool upper)
{
	appendStringInfo(out, upper ? "\\u%04X" : "\\u%04x", (unsigned int) c);
}

/*
 * The secret as a JSON string's contents written with \uXXXX escapes for
 * every character beyond ASCII (as Python's json module and JavaScript
 * write them), and with html_too also for " & ' + < > ` (as .NET's default
 * encoder writes them); hexadecimal digits in upper or lower case.  NULL
 * when the secret is not valid UTF-8 (the API reads it as UTF-8).
 */
static char *
unicode_escaped(const char *secret, bool html_too, bool upper)
{
	const unsigned char *p = (const unsigned char *) secret;
	StringInfoData out;

	if (!pg_verify_mbstr(PG_UTF8, secret, strlen(secret), true))
		return NULL;
	initStringInfo(&out);
	while (*p)
	{
		pg_wchar	c = *p;

		if (c >= 0x80)
		{
			c = utf8_to_unicode(p);
			p += pg_utf_mblen(p);
			if (c > 0xFFFF)
			{
				/* a surrogate pair */
				append_u_escape(&out, 0xD800 + ((c - 0x10000) >> 10), upper);
				c = 0xDC00 + ((c - 0x10000) & 0x3FF);
			}
			append_u_escape(&out, c, upper);
			continue;
		}
		p++;
		if (c == '\\' || (c == '"' && !html_too))
		{
			appendStringInfoChar(&out, '\\');
			appendStringInfoChar(&out, (char) c);
		}
		else if (c < 0x20 || (html_too && strchr("\"&'+<>`", (char) c)))
			append_u_escape(&out, c, upper);
		else
			appendStringInfoChar(&out, (char) c);
	}
	return out.data;
}

/*
 * usage_http_note_secret
 *		Redact secret, in every form a server may reflect it in, from any
 *		API text that reaches a message until the transaction ends.
 *
 * The forms: as sent; URL-encoded (upper- and lower-case hex, and with '+'
 * for a space, as a form body has it); JSON-escaped (also with "\/", and
 * with the \u escapes of unicode_escaped).
 */
void
usage_http_note_secret(const char *secret)
{
	StringInfoData enc;
	StringInfoData json;
	char	   *p;

	if (secret == NULL || strlen(secret) < MIN_REDACTED_LEN)
		return;
	add_secret_form(secret);

	initStringInfo(&enc);
	usage_append_url_encoded(&enc, secret);
	add_secret_form(enc.data);
	p = lower_hex_escapes(enc.data);
	add_secret_form(p);
	explicit_bzero(p, strlen(p));
	pfree(p);
	while ((p = strstr(enc.data, "%20")) != NULL)
	{
		*p = '+';
		memmove(p + 1, p + 3, strlen(p + 3) + 1);
	}
	add_secret_form(enc.data);

	initStringInfo(&json);
	escape_json(&json, secret);
	/* without the quotes */
	json.data[json.len - 1] = '\0';
	add_secret_form(json.data + 1);
	if (strchr(secret, '/') != NULL)
	{
		StringInfoData slash;

		initStringInfo(&slash);
		for (const char *q = json.data + 1; *q; q++)
		{
			if (*q == '/')
				appendStringInfoChar(&slash, '\\');
			appendStringInfoChar(&slash, *q);
		}
		add_secret_form(slash.data);
		explicit_bzero(slash.data, slash.len);
	}
	for (int style = 0; style < 4; style++)
	{
		p = unicode_escaped(secret, (style & 1) != 0, (style & 2) != 0);
		if (p == NULL)
			break;
		add_secret_form(p);
		explicit_bzero(p, strlen(p));
		pfree(p);
	}
	explicit_bzero(enc.data, enc.len);
	explicit_bzero(json.data, json.len);
}

/*
 * usage_redact_secrets
 *		len bytes of s with every noted secret replaced by "[redacted]";
 *		palloc'd and NUL-terminated, its length in *outlen.
 */
char *
usage_redact_secrets(const char *s, size_t len, size_t *outlen)
{
	StringInfoData out;
	size_t		i = 0;

	initStringInfo(&out);
	while (i < len)
	{
		bool		hit = false;

		for (int k = 0; k < nsecret_forms && !hit; k++)
		{
			size_t		fl = strlen(secret_forms[k]);

			if (fl <= len - i && memcmp(s + i, secret_forms[k], fl) == 0)
			{
				appendStringInfoString(&out, REDACTED);
				i += fl;
				hit = true;
			}
		}
		if (!hit)
			appendStringInfoChar(&out, s[i++]);
	}
	*outlen = out.len;
	return out.data;
}

/*
 * Pass UTF-8 text through the conversion to encoding "target", a stretch at
 * a time: where the conversion stops at a character that target cannot
 * hold, that character becomes '?'.  With convert, the result is in target;
 * without, it stays UTF-8 (only the characters that cannot be converted are
 * replaced).  Without a conversion (no catalog access, or none defined)
 * only ASCII is kept.
 */
static char *
utf8_keep_convertible(const char *utf8, int len, int target, bool convert)
{
	StringInfoData out;
	const unsigned char *src = (const unsigned char *) utf8;
	int			pos = 0;
	Oid			proc = InvalidOid;
	unsigned char *dest = NULL;
	int			destlen = len * MAX_CONVERSION_GROWTH + 1;

	if (IsTransactionState())
		proc = FindDefaultConversionProc(PG_UTF8, target);
	if (OidIsValid(proc))
		dest = palloc(destlen);

	initStringInfo(&out);
	while (pos < len)
	{
		int			done = 0;

		if (OidIsValid(proc))
		{
			done = pg_do_encoding_conversion_buf(proc, PG_UTF8, target,
												 (unsigned char *) src + pos,
												 len - pos, dest, destlen, true);
			if (convert)
				appendStringInfoString(&out, (char *) dest);
			else
				appendBinaryStringInfo(&out, (const char *) src + pos, done);
		}
		else
		{
			while (pos + done < len && src[pos + done] < 0x80)
				done++;
			appendBinaryStringInfo(&out, (const char *) src + pos, done);
		}
		pos += done;
		if (pos < len)
		{
			/* a character that target cannot hold */
			appendStringInfoChar(&out, '?');
			pos += pg_utf_mblen(src + pos);
		}
	}
	if (dest)
		pfree(dest);
	return out.data;
}

/*
 * usage_api_text
 *		Text that came from an API (an error body, a message, a header
 *		value), made fit for an error message.
 *
 * The bytes are taken as UTF-8, JSON's encoding.  The result is valid in the
 * database encoding: an invalid UTF-8 sequence becomes '?', and so does a
 * character that the database encoding cannot represent (ASCII always can).
 * A character that the client's encoding cannot represent becomes '?' as
 * well, so that sending the message to the client cannot fail and replace
 * it with an encoding error.  Every secret noted by usage_http_note_secret
 * becomes "[redacted]", first.  Control characters become spaces.  At most
 * max_bytes of the input are used, cut on a character boundary, and "..."
 * marks a cut.  Never fails on bad input; the result is palloc'd.
 */
char *
usage_api_text(const char *s, size_t len, size_t max_bytes)
{
	StringInfoData buf;
	size_t		i = 0;
	int			dbenc = GetDatabaseEncoding();
	int			clientenc = pg_get_client_encoding();
	char	   *text;
	bool		cut = false;

	if (s == NULL)
		return pstrdup("");

	/*
	 * Secrets out first, over enough of the text that one straddling the
	 * cut at max_bytes is replaced whole.
	 */
	if (nsecret_forms > 0)
	{
		size_t		window = Min(len, max_bytes + longest_secret_form);

		cut = window < len;
		s = usage_redact_secrets(s, window, &len);
	}

	/* valid UTF-8, without control characters */
	initStringInfo(&buf);
	while (i < len && i < max_bytes)
	{
		unsigned char c = (unsigned char) s[i];
		int			l;

		if (c < 0x80)
		{
			appendStringInfoChar(&buf, (c < 0x20 || c == 0x7f) ? ' ' : (char) c);
			i++;
			continue;
		}
		l = pg_utf_mblen((const unsigned char *) s + i);
		if (i + l <= len && pg_utf8_islegal((const unsigned char *) s + i, l))
		{
			if (i + l > max_bytes)
				break;			/* a whole character that does not fit */
			appendBinaryStringInfo(&buf, s + i, l);
			i += l;
		}
		else
		{
			appendStringInfoChar(&buf, '?');
			i++;
		}
	}
	if (i < len || cut)
		appendStringInfoString(&buf, "...");
	text = buf.data;

	/* what the client cannot show, then what the database cannot hold */
	if (clientenc != PG_UTF8 && clientenc != PG_SQL_ASCII && clientenc != dbenc)
		text = utf8_keep_convertible(text, strlen(text), clientenc, false);
	if (dbenc != PG_UTF8 && dbenc != PG_SQL_ASCII)
		text = utf8_keep_convertible(text, strlen(text), dbenc, true);
	return text;
}

