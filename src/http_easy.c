/*-------------------------------------------------------------------------
 *
 * http_easy.c
 *		  One transfer's easy handle: its options, its headers (the bearer
 *		  token among them), and the libcurl callbacks that fill it with the
 *		  response (no ereport in those: only malloc and flags).
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "http_int.h"

/*
 * Append received body bytes to the transfer's buffer.  A body of exactly
 * USAGE_MAX_RESPONSE_BYTES is accepted; one byte more is refused.  The
 * buffer keeps a terminating NUL after the body.
 */
/* Is the response being received a 200 (whose body a reader will take)? */
static bool
is_200(UsageTransfer *x)
{
	long		code = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	return code == 200;
}

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	UsageTransfer *x = (UsageTransfer *) userdata;
	size_t		n = size * nmemb;

	if (x->received + n > USAGE_MAX_RESPONSE_BYTES)
	{
		x->too_large = true;
		return 0;				/* makes libcurl abort with CURLE_WRITE_ERROR */
	}
	if (x->taken > 0 && x->len + n + 1 > x->cap)
	{
		/* the reader has these: make room */
		memmove(x->buf, x->buf + x->taken, x->len - x->taken);
		x->len -= x->taken;
		x->taken = 0;
	}
	if (x->len > 0 && x->len + n > STREAM_BUFFER_BYTES && is_200(x))
	{
		/* libcurl keeps these bytes and hands them over again: see unpause */
		x->paused = true;
		x->paused_at = GetCurrentTimestamp();
		return CURL_WRITEFUNC_PAUSE;
	}
	if (x->len + n + 1 > x->cap)
	{
		size_t		newcap = Max(x->cap * 2, x->len + n + 1);
		char	   *nb;

		newcap = Max(newcap, 16384);
		newcap = Min(newcap, (size_t) USAGE_MAX_RESPONSE_BYTES + 1);
		nb = realloc(x->buf, newcap);
		if (nb == NULL)
			return 0;
		x->buf = nb;
		x->cap = newcap;
	}
	memcpy(x->buf + x->len, ptr, n);
	x->len += n;
	x->received += n;
	x->buf[x->len] = '\0';
	return n;
}

/*
 * Keep the Retry-After header of the last response (a 1xx interim response
 * or a proxy's answer to CONNECT does not count: a status line starts
 * afresh).  Only malloc here; a value too long to be usable is dropped.
 */
static size_t
header_cb(char *buffer, size_t size, size_t nitems, void *userdata)
{
	UsageTransfer *x = (UsageTransfer *) userdata;
	size_t		n = size * nitems;

	/* oversized headers: stop here rather than let libcurl buffer them */
	x->header_bytes += n;
	if (x->header_bytes > MAX_HEADER_BYTES)
	{
		x->headers_too_large = true;
		return 0;				/* makes libcurl abort the transfer */
	}
	if (n >= 5 && strncmp(buffer, "HTTP/", 5) == 0)
	{
		x->in_headers = true;
		free(x->retry_after);
		x->retry_after = NULL;
	}
	else if ((n == 2 && buffer[0] == '\r' && buffer[1] == '\n') ||
			 (n == 1 && buffer[0] == '\n'))
		x->in_headers = false;
	else if (n > 12 && pg_strncasecmp(buffer, "Retry-After:", 12) == 0)
	{
		const char *v = buffer + 12;
		size_t		vl = n - 12;

		while (vl > 0 && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t' ||
						  v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		free(x->retry_after);
		x->retry_after = NULL;
		if (vl <= RETRY_AFTER_MAX_LEN)
		{
			x->retry_after = malloc(vl + 1);
			if (x->retry_after)
			{
				memcpy(x->retry_after, v, vl);
				x->retry_after[vl] = '\0';
			}
		}
	}
	return n;
}

/* Append a header line; out of memory frees the transfer and fails. */
static struct curl_slist *
append_header(UsageTransfer *x, struct curl_slist *list, const char *h)
{
	struct curl_slist *n = curl_slist_append(list, h);

	if (n == NULL)
	{
		usage_http_free_transfer(x);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	return n;
}

/*
 * (Re)build the request headers: the body's content type, and the bearer
 * token when the request has a source of tokens (asked for the current one
 * first, as that may fetch one).
 */
void
usage_http_build_headers(UsageTransfer *x)
{
	struct curl_slist *h = NULL;
	char	   *auth = NULL;
	char	   *line;

	if (x->has_bearer)
	{
		const char *token = x->bearer.token(x->bearer.arg);

		usage_http_note_secret(token);
		auth = psprintf("Authorization: Bearer %s", token);
	}
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	h = append_header(x, h, "Accept: application/json");
	x->headers = h;
	if (x->body_type)
	{
		line = psprintf("Content-Type: %s", x->body_type);
		x->headers = h = append_header(x, h, line);
		pfree(line);
		/* no "Expect: 100-continue" round trip */
		x->headers = h = append_header(x, h, "Expect:");
	}
	if (auth)
	{
		x->headers = h = append_header(x, h, auth);
		/* do not leave the token lying around in palloc'd memory */
		explicit_bzero(auth, strlen(auth));
		pfree(auth);
	}
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
}

#define SETOPT(opt, val) \
	do { \
		if (curl_easy_setopt(x->easy, opt, val) != CURLE_OK) \
			goto setopt_failed; \
	} while (0)

/*
 * Set the options of a new transfer's easy handle.  Returns false when
 * libcurl refuses one.
 */
bool
usage_http_set_options(UsageTransfer *x, const UsageHttpRequest *req)
{
	UsageOptions *opts = req->opts;

	SETOPT(CURLOPT_PRIVATE, x);
	SETOPT(CURLOPT_URL, req->url);
	SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(CURLOPT_WRITEDATA, x);
	SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(CURLOPT_HEADERDATA, x);
	SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SETOPT(CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* timeout_ms is http.c's (check_deadlines): a pause must not count */
	SETOPT(CURLOPT_TIMEOUT_MS, 0L);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long) opts->connect_timeout_ms);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(CURLOPT_USERAGENT, "usage_fdw/" USAGE_FDW_VERSION);
	SETOPT(CURLOPT_ACCEPT_ENCODING, "");
	/* refuse a body announced as too large before reading it */
	SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) USAGE_MAX_RESPONSE_BYTES);
	if (opts->ca_file)
		SETOPT(CURLOPT_CAINFO, opts->ca_file);
	if (opts->proxy)
		SETOPT(CURLOPT_PROXY, opts->proxy);
	if (strcmp(req->method, "POST") == 0)
	{
		SETOPT(CURLOPT_POST, 1L);
		SETOPT(CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
	}
	else
		SETOPT(CURLOPT_HTTPGET, 1L);
	return true;

setopt_failed:
	return false;
}
