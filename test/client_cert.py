#!/usr/bin/env python3
"""Client certificates and JWT client assertions for the tests (certificate
login, RFC 7523 private_key_jwt; test/MOCK.md), with the `openssl` command line.

  python3 test/client_cert.py DIR NAME [--passphrase P] [--days N] [--ec]

writes DIR/NAME.crt (self-signed, CN=NAME, keyUsage digitalSignature) and
DIR/NAME.key (RSA 2048, PKCS#8 PEM; encrypted with AES-256 when --passphrase
is given; --ec: a P-256 EC key instead, for negative tests) and prints the two
paths, one a line.  As a module:

  make_client_cert(dir, name, passphrase=None, ec=False, days=365) -> (cert_path, key_path)
  thumbprints(cert_path) -> (x5t, kid)     base64url SHA-1 of the DER, upper-case hex
  sign_assertion(key_path, cert_path, client_id, aud, jti=None, now=None,
                 passphrase=None, **overrides) -> the JWT (str)
  sign_jwt(key_path, header, claims, passphrase=None) -> the JWT (str)

sign_assertion builds the header {alg RS256, typ JWT, x5t, kid} and the claims
{iss, sub = client_id, aud, jti (default a fresh random one), iat = nbf = now,
exp = now + 300}; an override replaces a header field (alg, typ, x5t, kid) or
a claim (anything else), None removes it; sign_jwt signs any header and
claims as given (for a claim set sign_assertion cannot make, such as one
without jti).  The signature is openssl's
SHA-256 signature with the key (RSA PKCS#1 v1.5; DER ECDSA for an EC key),
whatever `alg` says.  Standard library + openssl only.
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

OPENSSL = os.environ.get("OPENSSL", "openssl")
HEADER_FIELDS = ("alg", "typ", "x5t", "kid")
PASS_ENV = "CLIENT_CERT_PASSPHRASE"

# a minimal request configuration, so the system's openssl.cnf adds nothing
REQ_CONFIG = """[req]
distinguished_name = dn
x509_extensions = v3
prompt = no
[dn]
CN = unused
[v3]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
"""


def _openssl(args, passphrase=None, data=None):
    env = dict(os.environ)
    if passphrase is not None:
        env[PASS_ENV] = passphrase          # never on the command line (ps would show it)
    r = subprocess.run([OPENSSL] + args, input=data, capture_output=True, env=env, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (args[0], r.stderr.decode("utf-8", "replace")))
    return r.stdout


def b64url(data):
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def make_client_cert(directory, name, passphrase=None, ec=False, days=365):
    """Write DIR/NAME.key and DIR/NAME.crt; return (cert_path, key_path)."""
    os.makedirs(directory, exist_ok=True)
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".crt")
    args = ["genpkey", "-out", key]
    if ec:
        args += ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    else:
        args += ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    if passphrase is not None:
        args += ["-aes-256-cbc", "-pass", "env:" + PASS_ENV]
    old = os.umask(0o077)
    try:
        _openssl(args, passphrase)
    finally:
        os.umask(old)
    tmp = tempfile.mkdtemp(prefix="client_cert.")
    try:
        cnf = os.path.join(tmp, "req.cnf")
        with open(cnf, "w", encoding="ascii") as f:
            f.write(REQ_CONFIG)
        args = ["req", "-new", "-x509", "-config", cnf, "-key", key, "-subj", "/CN=" + name,
                "-days", str(days), "-sha256", "-out", crt]
        if passphrase is not None:
            args += ["-passin", "env:" + PASS_ENV]
        _openssl(args, passphrase)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return crt, key


def thumbprints(cert_path):
    """(x5t, kid): base64url and upper-case hex of the SHA-1 of the certificate's DER."""
    der = _openssl(["x509", "-in", cert_path, "-outform", "DER"])
    digest = hashlib.sha1(der).digest()
    return b64url(digest), digest.hex().upper()


def sign_assertion(key_path, cert_path, client_id, aud, jti=None, now=None, passphrase=None,
                   **overrides):
    """A client assertion (compact JWT) signed with key_path, naming cert_path's
    thumbprints; overrides make it deliberately wrong (module docstring)."""
    now = int(time.time()) if now is None else now
    x5t, kid = thumbprints(cert_path)
    header = {"alg": "RS256", "typ": "JWT", "x5t": x5t, "kid": kid}
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "jti": jti or str(uuid.uuid4()),
              "iat": now, "nbf": now, "exp": now + 300}
    for name, value in overrides.items():
        target = header if name in HEADER_FIELDS else claims
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return sign_jwt(key_path, header, claims, passphrase)


def sign_jwt(key_path, header, claims, passphrase=None):
    """header.claims.signature: the two JSON objects as given (compact JSON,
    base64url without padding), signed with openssl dgst -sha256 -sign."""
    signing_input = "%s.%s" % (b64url(json.dumps(header, separators=(",", ":")).encode()),
                               b64url(json.dumps(claims, separators=(",", ":")).encode()))
    tmp = tempfile.mkdtemp(prefix="client_jwt.")
    try:
        data = os.path.join(tmp, "data.bin")
        with open(data, "wb") as f:
            f.write(signing_input.encode("ascii"))
        args = ["dgst", "-sha256", "-sign", key_path]
        if passphrase is not None:
            args += ["-passin", "env:" + PASS_ENV]
        signature = _openssl(args + [data], passphrase)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return signing_input + "." + b64url(signature)


def main(argv=None):
    p = argparse.ArgumentParser(description="Write a self-signed client certificate and its key.")
    p.add_argument("dir")
    p.add_argument("name")
    p.add_argument("--passphrase", help="encrypt the key (PKCS#8, AES-256)")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--ec", action="store_true", help="a P-256 EC key instead of RSA 2048")
    a = p.parse_args(argv)
    try:
        crt, key = make_client_cert(a.dir, a.name, a.passphrase, a.ec, a.days)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        print("client_cert: %s" % e, file=sys.stderr)
        return 1
    print(crt)
    print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
