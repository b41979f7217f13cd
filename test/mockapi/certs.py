"""Client certificates for the JWT client assertion (RFC 7523,
private_key_jwt), through the `openssl` command line (the standard library
has no RSA): reading a registered certificate once, verifying an RS256
signature per request.  Files live in a temporary directory that is removed
afterwards."""

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile

OPENSSL = os.environ.get("OPENSSL", "openssl")
TIMEOUT = 20


class CertError(ValueError):
    """The certificate could not be read (the message says why)."""


class ClientCert:
    """A registered certificate: its thumbprints and its public key (PEM)."""

    __slots__ = ("client_id", "x5t", "kid", "public_key", "key_type")

    def __init__(self, client_id, x5t, kid, public_key, key_type):
        self.client_id = client_id
        self.x5t = x5t                    # base64url(SHA-1(DER)), no padding
        self.kid = kid                    # the same SHA-1, upper-case hex
        self.public_key = public_key      # PEM text
        self.key_type = key_type          # "RSA" or what openssl calls the algorithm


def b64url(data):
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _run(args, **kw):
    return subprocess.run([OPENSSL] + args, capture_output=True, timeout=TIMEOUT, **kw)


def load_certificate(client_id, pem_text):
    """A ClientCert from PEM text (the first certificate in it); CertError
    when openssl cannot read it."""
    if not isinstance(pem_text, str) or "-----BEGIN CERTIFICATE-----" not in pem_text:
        raise CertError("not a PEM certificate (no -----BEGIN CERTIFICATE----- line)")
    tmp = tempfile.mkdtemp(prefix="mock_cert.")
    try:
        path = os.path.join(tmp, "cert.pem")
        with open(path, "w", encoding="utf-8") as f:
            f.write(pem_text)
        der = _run(["x509", "-in", path, "-outform", "DER"])
        pub = _run(["x509", "-in", path, "-pubkey", "-noout"])
        text = _run(["x509", "-in", path, "-noout", "-text"])
        if der.returncode != 0 or pub.returncode != 0 or text.returncode != 0 or not der.stdout:
            err = (der.stderr or pub.stderr or text.stderr).decode("utf-8", "replace").strip()
            raise CertError("openssl cannot read the certificate: %s" % err.splitlines()[0]
                            if err else "openssl cannot read the certificate")
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CertError("openssl failed: %s" % e) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    digest = hashlib.sha1(der.stdout).digest()
    key_type = "unknown"
    for line in text.stdout.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith("Public Key Algorithm:"):
            alg = line.split(":", 1)[1].strip()
            key_type = "RSA" if alg == "rsaEncryption" else alg
            break
    return ClientCert(client_id, b64url(digest), digest.hex().upper(),
                      pub.stdout.decode("ascii"), key_type)


def verify_rs256(public_key_pem, data, signature):
    """Does `signature` (bytes) verify over `data` (bytes) as RSASSA-PKCS1-v1_5
    with SHA-256 under the public key?  (openssl dgst -sha256 -verify)"""
    tmp = tempfile.mkdtemp(prefix="mock_jwt.")
    try:
        files = {}
        for name, content in (("pub.pem", public_key_pem.encode("ascii")), ("sig.bin", signature),
                              ("data.bin", data)):
            files[name] = os.path.join(tmp, name)
            with open(files[name], "wb") as f:
                f.write(content)
        r = _run(["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pkcs1", "-verify",
                  files["pub.pem"], "-signature", files["sig.bin"], files["data.bin"]])
        return r.returncode == 0 and b"Verified OK" in r.stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
