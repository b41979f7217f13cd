#!/usr/bin/python3
"""Post one client assertion twice to a token endpoint and print both answers.

    python3 test/replay_assertion.py TOKEN_URL KEY CERT CLIENT_ID

For the certlogin suite: the mock's token endpoint, like IdentityServer,
accepts a jti once; the second post of the same assertion is refused.
"""
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client_cert  # noqa: E402


def post(url, form):
    req = urllib.request.Request(url, form, {"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return "%d %s" % (r.status, json.load(r).get("token_type"))
    except urllib.error.HTTPError as e:
        body = json.load(e)
        return "%d %s: %s" % (e.code, body.get("error"), body.get("error_description"))


def main(argv):
    url, key, cert, client_id = argv
    assertion = client_cert.sign_assertion(key, cert, client_id, url)
    form = urllib.parse.urlencode({
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion}).encode()
    print("first:", post(url, form))
    print("again:", post(url, form))


if __name__ == "__main__":
    main(sys.argv[1:])
