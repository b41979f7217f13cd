"""OAuth2 of both vendors: the client-credentials token endpoint (a client
secret, or a JWT client assertion signed with a registered certificate's
key: RFC 7523 private_key_jwt) and the bearer check of the API endpoints,
as pure functions of a Request."""

import base64
import binascii
import json
import re
import time
import urllib.parse

from . import certs
from .common import ApiError, Resp, error_resp, media_type

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW = 300                  # seconds: nbf and iat may be this far in the future
MAX_ASSERTION_LIFETIME = 3600     # seconds: exp - iat at most


class AssertionPolicy:
    """What checking a client assertion needs: `audience` (the token URL as
    the client addressed it), cert_for(client_id) -> certs.ClientCert or
    None, use_jti(jti) -> True the first time a jti is seen (and records it),
    False after; `now` (unix seconds; default the clock) and `verify`
    (certs.verify_rs256, replaceable for tests)."""

    def __init__(self, audience, cert_for, use_jti, now=None, verify=None):
        self.audience = audience
        self.cert_for = cert_for
        self.use_jti = use_jti
        self.now = now
        self.verify = verify or certs.verify_rs256


def token(req, client_id, client_secret, issue_token, assertion=None):
    """POST .../connect/token (client credentials: a secret in the form or as
    Basic credentials, or a client assertion checked by `assertion`, an
    AssertionPolicy).  issue_token(scope) -> (token, seconds to live).  An
    assertion's answer carries log_fields {"assertion_error": None | check}."""
    try:
        return _token(req, client_id, client_secret, issue_token, assertion)
    except ApiError as e:
        return e.resp


def _oauth_error(code, message, log_fields=None):
    return ApiError(Resp(400, {"error": code, "error_description": message},
                         headers=[("Cache-Control", "no-store")], log_fields=log_fields))


def _assertion_error(message, code="invalid_client"):
    return _oauth_error(code, message, {"assertion_error": message})


def _b64url_json(part, what):
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("utf-8"))
    except (binascii.Error, ValueError):
        raise _assertion_error("JWT %s is not base64url JSON" % what) from None
    if not isinstance(value, dict):
        raise _assertion_error("JWT %s is not a JSON object" % what)
    return value


def _is_int(v):
    return type(v) is int


def _assertion_grant(form, policy, issue_token):
    """grant_type=client_credentials with client_assertion_type jwt-bearer and
    client_assertion: each check that fails is a 400 invalid_client naming it."""
    if form.get("client_assertion_type") != JWT_BEARER:
        raise _assertion_error("client_assertion_type must be %s" % JWT_BEARER, "invalid_request")
    jwt = form.get("client_assertion")
    if not jwt:
        raise _assertion_error("client_assertion missing", "invalid_request")
    if "client_secret" in form:
        raise _assertion_error("client_secret and client_assertion both sent", "invalid_request")
    parts = jwt.split(".")
    if len(parts) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_-]+", p) for p in parts):
        raise _assertion_error("client_assertion is not a JWT (three base64url parts, no padding)")
    header = _b64url_json(parts[0], "header")
    claims = _b64url_json(parts[1], "claims")
    if header.get("alg") != "RS256":
        raise _assertion_error("header alg must be RS256")
    if header.get("typ") != "JWT":
        raise _assertion_error("header typ must be JWT")
    for name in ("x5t", "kid"):
        if not isinstance(header.get(name), str):
            raise _assertion_error("header %s missing" % name)
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise _assertion_error("claim iss missing")
    if claims.get("sub") != iss:
        raise _assertion_error("claim sub must equal iss")
    if "client_id" in form and form["client_id"] != iss:
        raise _assertion_error("client_id does not match the assertion's iss")
    cert = policy.cert_for(iss) if policy else None
    if cert is None:
        raise _assertion_error("no certificate registered for client '%s'" % iss)
    if header["x5t"] != cert.x5t:
        raise _assertion_error("header x5t does not match the registered certificate")
    if header["kid"] != cert.kid:
        raise _assertion_error("header kid does not match the registered certificate")
    if claims.get("aud") != policy.audience:
        raise _assertion_error("claim aud must be the token URL %s" % policy.audience)
    for name in ("exp", "nbf", "iat"):
        if not _is_int(claims.get(name)):
            raise _assertion_error("claim %s must be a JSON integer (unix seconds)" % name)
    now = int(time.time()) if policy.now is None else policy.now
    if claims["exp"] <= now:
        raise _assertion_error("assertion expired (exp <= now)")
    if claims["nbf"] > now + CLOCK_SKEW:
        raise _assertion_error("assertion not yet valid (nbf > now + %d s)" % CLOCK_SKEW)
    if claims["iat"] > now + CLOCK_SKEW:
        raise _assertion_error("claim iat is in the future (> now + %d s)" % CLOCK_SKEW)
    if claims["exp"] - claims["iat"] > MAX_ASSERTION_LIFETIME:
        raise _assertion_error("assertion lifetime exp - iat over %d s" % MAX_ASSERTION_LIFETIME)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _assertion_error("claim jti missing")
    if cert.key_type != "RSA":
        raise _assertion_error("the registered certificate's key is %s, RS256 needs RSA"
                               % cert.key_type)
    signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    if not policy.verify(cert.public_key, ("%s.%s" % (parts[0], parts[1])).encode("ascii"),
                         signature):
        raise _assertion_error("signature does not verify with the registered certificate")
    if not policy.use_jti(jti):
        raise _assertion_error("jti already used")
    scope = form.get("scope", "")
    tok, ttl = issue_token(scope)
    return Resp(200, {"access_token": tok, "expires_in": ttl, "token_type": "Bearer",
                      "scope": scope},
                headers=[("Cache-Control", "no-store"), ("Pragma", "no-cache")],
                log_fields={"assertion_error": None})


def _token(req, want_id, want_secret, issue_token, policy):
    if media_type(req.header("Content-Type")) != "application/x-www-form-urlencoded":
        raise _oauth_error("invalid_request", "Content-Type must be application/x-www-form-urlencoded")
    pairs = urllib.parse.parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True)
    names = [n for n, _ in pairs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _oauth_error("invalid_request", "parameter '%s' repeated" % dup[0])
    form = dict(pairs)
    if form.get("grant_type") != "client_credentials":
        raise _oauth_error("unsupported_grant_type", "grant_type must be client_credentials")
    h = req.header("Authorization")
    if "client_assertion" in form or "client_assertion_type" in form:
        if h and h.strip().lower().startswith("basic "):
            raise _assertion_error("Basic credentials and client_assertion both sent",
                                   "invalid_request")
        return _assertion_grant(form, policy, issue_token)
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    if h and h.strip().lower().startswith("basic "):
        # client_secret_basic (RFC 6749 2.3.1): form-urlencoded id and secret
        try:
            raw = base64.b64decode(h.strip()[6:].strip(), validate=True).decode("utf-8")
            bid, _, bsecret = raw.partition(":")
        except (binascii.Error, ValueError):
            raise _oauth_error("invalid_client", "malformed Basic credentials") from None
        if client_id is not None or client_secret is not None:
            raise _oauth_error("invalid_request", "client credentials sent twice (Basic and form)")
        client_id, client_secret = urllib.parse.unquote_plus(bid), urllib.parse.unquote_plus(bsecret)
    if client_id != want_id or client_secret != want_secret:
        raise _oauth_error("invalid_client", "unknown client or wrong client secret")
    scope = form.get("scope", "")
    tok, ttl = issue_token(scope)
    return Resp(200, {"access_token": tok, "expires_in": ttl, "token_type": "Bearer",
                      "scope": scope},
                headers=[("Cache-Control", "no-store"), ("Pragma", "no-cache")])


def bearer_error(req, style, token_valid):
    """None when the request carries a valid bearer token, else the 401 in the
    vendor's shape.  token_valid(token) -> bool."""
    h = req.header("Authorization")
    if h is None:
        return error_resp(style, 401, "missing bearer token",
                          headers=[("WWW-Authenticate", "Bearer")])
    scheme, _, tok = h.strip().partition(" ")
    tok = tok.strip()
    if scheme.lower() != "bearer" or not tok:
        return error_resp(style, 401, "Authorization must be 'Bearer <token>'",
                          headers=[("WWW-Authenticate", "Bearer")])
    if not token_valid(tok):
        return error_resp(style, 401, "invalid or expired access token",
                          headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')])
    return None
