"""OAuth2 of both vendors: the client-credentials token endpoint and the
bearer check of the API endpoints, as pure functions of a Request."""

import base64
import binascii
import urllib.parse

from .common import ApiError, Resp, error_resp, media_type


def token(req, client_id, client_secret, issue_token):
    """POST .../connect/token (client credentials, in the form or as Basic
    credentials).  issue_token(scope) -> (token, seconds to live)."""
    try:
        return _token(req, client_id, client_secret, issue_token)
    except ApiError as e:
        return e.resp


def _oauth_error(code, message):
    return ApiError(Resp(400, {"error": code, "error_description": message},
                         headers=[("Cache-Control", "no-store")]))


def _token(req, want_id, want_secret, issue_token):
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
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    h = req.header("Authorization")
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
