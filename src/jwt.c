/*-------------------------------------------------------------------------
 *
 * jwt.c
 *		  Certificate login: the JWT client assertion (RFC 7523,
 *		  private_key_jwt) that stands in for a client secret, signed RS256
 *		  with OpenSSL's libcrypto.
 *
 * A user mapping with client_id, client_certificate and client_key (PEM
 * texts; an encrypted key also needs client_key_passphrase) logs in with
 * the client-credentials grant and an assertion instead of a secret.  The
 * assertion's header names the certificate (x5t: the base64url SHA-1
 * thumbprint of its DER; kid: the same in upper-case hex), its claims are
 * iss = sub = client_id, aud = the token URL, a fresh random jti, iat = nbf
 * = now and exp = now + 5 minutes.
 *
 * Ownership: every OpenSSL object lives in one Credentials struct, loaded
 * without raising errors and freed by free_credentials() before any error
 * is raised (or, while PostgreSQL code that may raise one runs, in a
 * PG_FINALLY).  OpenSSL's error queue is cleared after each use: libcurl
 * and PostgreSQL share it.  Neither the key, its passphrase nor an
 * assertion ever reaches a message.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/stringinfo.h"
#include "port.h"
#include "utils/json.h"

#include "usage_fdw.h"

/* lifetime of an assertion, seconds */
#define ASSERTION_LIFETIME 300

/* What loading a certificate and its key can come to. */
typedef enum CredentialStatus
{
	CRED_OK,
	CRED_BAD_CERTIFICATE,		/* not a PEM certificate */
	CRED_BAD_KEY,				/* not a PEM private key, or wrong passphrase */
	CRED_NOT_RSA,				/* RS256 needs an RSA key */
	CRED_MISMATCH				/* the key is not the certificate's */
} CredentialStatus;

/* The OpenSSL objects of one certificate login. */
typedef struct Credentials
{
	X509	   *cert;
	EVP_PKEY   *key;
} Credentials;

/*
 * The passphrase callback: the user mapping's passphrase, or none (never a
 * prompt on the server's terminal, which OpenSSL's default would try).
 */
static int
passphrase_cb(char *buf, int size, int rwflag, void *userdata)
{
	const char *pass = (const char *) userdata;
	int			len;

	if (pass == NULL)
		return -1;
	len = strlen(pass);
	if (len > size)
		return -1;
	memcpy(buf, pass, len);
	return len;
}

/* Free what load_credentials loaded, and OpenSSL's error queue. */
static void
free_credentials(Credentials *cr)
{
	X509_free(cr->cert);
	EVP_PKEY_free(cr->key);
	cr->cert = NULL;
	cr->key = NULL;
	ERR_clear_error();
}

/*
 * Load the certificate and the key into *cr, and check that the key is an
 * RSA key that belongs to the certificate.  Raises no error: whatever it
 * returns, the caller frees *cr.
 */
static CredentialStatus
load_credentials(const char *cert_pem, const char *key_pem,
				 const char *passphrase, Credentials *cr)
{
	BIO		   *bio;

	memset(cr, 0, sizeof(Credentials));
	bio = BIO_new_mem_buf(cert_pem, -1);
	if (bio != NULL)
		cr->cert = PEM_read_bio_X509(bio, NULL, passphrase_cb, NULL);
	BIO_free(bio);
	if (cr->cert == NULL)
		return CRED_BAD_CERTIFICATE;

	bio = BIO_new_mem_buf(key_pem, -1);
	if (bio != NULL)
		cr->key = PEM_read_bio_PrivateKey(bio, NULL, passphrase_cb,
										  unconstify(char *, passphrase));
	BIO_free(bio);
	if (cr->key == NULL)
		return CRED_BAD_KEY;
	if (EVP_PKEY_base_id(cr->key) != EVP_PKEY_RSA)
		return CRED_NOT_RSA;
	if (X509_check_private_key(cr->cert, cr->key) != 1)
		return CRED_MISMATCH;
	return CRED_OK;
}

/* The error for a certificate login that cannot work. */
USAGE_NORETURN static void
report_credentials(CredentialStatus status, bool encrypted)
{
	switch (status)
	{
		case CRED_BAD_CERTIFICATE:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("option \"client_certificate\" is not a PEM certificate"),
					 errhint("Give the text of the certificate, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.")));
			break;
		case CRED_BAD_KEY:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("option \"client_key\" is not a private key that can be read"),
					 encrypted ?
					 errhint("Check client_key_passphrase: the key is encrypted.") :
					 errhint("Give the PEM text of the private key; an encrypted key also needs client_key_passphrase.")));
			break;
		case CRED_NOT_RSA:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("option \"client_key\" is not an RSA key"),
					 errdetail("The client assertion is signed with RS256, which needs an RSA key.")));
			break;
		case CRED_MISMATCH:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("option \"client_key\" is not the private key of \"client_certificate\""),
					 errhint("Give the key the certificate was made for; openssl x509 -noout -pubkey and openssl pkey -pubout show whether two belong together.")));
			break;
		case CRED_OK:
			break;
	}
	elog(ERROR, "unexpected credential status %d", (int) status);
}

/* Does a PEM key text say it is encrypted? */
static bool
key_is_encrypted(const char *key_pem)
{
	return strstr(key_pem, "ENCRYPTED") != NULL;
}

/*
 * usage_check_client_certificate
 *		At CREATE/ALTER USER MAPPING: the certificate and key can be read
 *		and belong together, and the key can sign RS256.  Warns of a
 *		certificate that has expired.
 */
void
usage_check_client_certificate(const char *cert_pem, const char *key_pem,
							   const char *passphrase)
{
	Credentials cr;
	CredentialStatus status = load_credentials(cert_pem, key_pem, passphrase, &cr);
	bool		expired = false;

	if (status == CRED_OK)
		expired = X509_cmp_current_time(X509_get0_notAfter(cr.cert)) < 0;
	free_credentials(&cr);
	if (status != CRED_OK)
		report_credentials(status, key_is_encrypted(key_pem));
	if (expired)
		ereport(WARNING,
				(errmsg("option \"client_certificate\" holds a certificate that has expired"),
				 errhint("The token endpoint will likely refuse it: register a new certificate with the application.")));
}

/* ----------------------------------------------------------------
 *		The assertion
 * ----------------------------------------------------------------
 */

/* base64url without padding (RFC 7515 §2) */
static void
append_base64url(StringInfo buf, const unsigned char *data, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	for (size_t i = 0; i < len; i += 3)
	{
		uint32		v = (uint32) data[i] << 16;
		int			n = (int) Min(len - i, 3);

		if (n > 1)
			v |= (uint32) data[i + 1] << 8;
		if (n > 2)
			v |= data[i + 2];
		for (int k = 0; k <= n; k++)
			appendStringInfoChar(buf, alphabet[(v >> (18 - 6 * k)) & 0x3F]);
	}
}

/* A random GUID (version 4), for jti. */
static char *
random_guid(void)
{
	unsigned char b[16];

	if (!pg_strong_random(b, sizeof(b)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random jti for the client assertion")));
	b[6] = (b[6] & 0x0F) | 0x40;
	b[8] = (b[8] & 0x3F) | 0x80;
	return psprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
					b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
					b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* The signing input: base64url(header) "." base64url(claims). */
static void
append_signing_input(StringInfo jwt, X509 *cert, const char *client_id,
					 const char *audience)
{
	unsigned char sha1[EVP_MAX_MD_SIZE];
	unsigned int sha1_len = 0;
	StringInfoData part;
	StringInfoData kid;
	int64		now = (int64) time(NULL);

	if (!X509_digest(cert, EVP_sha1(), sha1, &sha1_len))
		sha1_len = 0;
	initStringInfo(&kid);
	for (unsigned int i = 0; i < sha1_len; i++)
		appendStringInfo(&kid, "%02X", sha1[i]);

	initStringInfo(&part);
	appendStringInfoString(&part, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5t\":\"");
	append_base64url(&part, sha1, sha1_len);
	appendStringInfo(&part, "\",\"kid\":\"%s\"}", kid.data);
	append_base64url(jwt, (unsigned char *) part.data, part.len);
	appendStringInfoChar(jwt, '.');

	resetStringInfo(&part);
	appendStringInfoString(&part, "{\"iss\":");
	escape_json(&part, client_id);
	appendStringInfoString(&part, ",\"sub\":");
	escape_json(&part, client_id);
	appendStringInfoString(&part, ",\"aud\":");
	escape_json(&part, audience);
	appendStringInfoString(&part, ",\"jti\":");
	escape_json(&part, random_guid());
	appendStringInfo(&part, ",\"iat\":" INT64_FORMAT ",\"nbf\":" INT64_FORMAT ",\"exp\":" INT64_FORMAT "}",
					 now, now, now + ASSERTION_LIFETIME);
	append_base64url(jwt, (unsigned char *) part.data, part.len);
}

/*
 * The RS256 signature of jwt's text, appended to it as "." base64url.
 * False when OpenSSL fails.  The signature goes to palloc'd memory, so
 * that nothing of OpenSSL's is left behind should PostgreSQL raise an
 * error meanwhile.
 */
static bool
append_signature(StringInfo jwt, EVP_PKEY *key)
{
	size_t		siglen = (size_t) Max(EVP_PKEY_size(key), 1);
	unsigned char *sig = palloc(siglen);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool		ok;

	ok = md != NULL &&
		EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		EVP_DigestSignUpdate(md, jwt->data, jwt->len) == 1 &&
		EVP_DigestSignFinal(md, sig, &siglen) == 1;
	EVP_MD_CTX_free(md);
	if (ok)
	{
		appendStringInfoChar(jwt, '.');
		append_base64url(jwt, sig, siglen);
	}
	pfree(sig);
	return ok;
}

/*
 * usage_client_assertion
 *		A signed JWT client assertion for the token request to audience
 *		(the token URL), palloc'd.  The caller overwrites it once sent.
 */
char *
usage_client_assertion(const char *cert_pem, const char *key_pem,
					   const char *passphrase, const char *client_id,
					   const char *audience)
{
	Credentials cr;
	CredentialStatus status;
	StringInfoData jwt;
	volatile bool signed_ok = false;

	status = load_credentials(cert_pem, key_pem, passphrase, &cr);
	if (status != CRED_OK)
	{
		free_credentials(&cr);
		report_credentials(status, key_is_encrypted(key_pem));
	}
	initStringInfo(&jwt);
	PG_TRY();
	{
		append_signing_input(&jwt, cr.cert, client_id, audience);
		signed_ok = append_signature(&jwt, cr.key);
	}
	PG_FINALLY();
	{
		free_credentials(&cr);
	}
	PG_END_TRY();
	if (!signed_ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("could not sign the client assertion with option \"client_key\"")));
	return jwt.data;
}
