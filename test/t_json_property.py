#!/usr/bin/env python3
"""The response parser against PostgreSQL's own reading of the same bytes.

The reference test of json_tuple.c (issue 16 replaces the parser: this test
must then catch any difference).  With a fixed seed (JSON_PROP_SEED, default
20261202) it generates random response bodies, plus a fixed list of edge
cases, and for each one serves the exact bytes (a `body_b64` fault, one per
query) on the path of a declared foreign table, reads it through the FDW,
and reads the same bytes with PostgreSQL:

- json (order and duplicates kept, raw text of numbers and nested values):
  json_array_elements(body::json -> 'items') and, per column, the LAST
  member whose key is the column's key (or, without json_key, its camelCase
  name or its exact name) from json_each / json_each_text -- exactly the
  text the FDW hands to the column's input function;
- jsonb (what a user would compare with): jsonb_array_elements(body::jsonb
  -> 'items'): the json_key '*' column equals the element, the jsonb column
  the member, the numeric column (member->>'amount')::numeric, a text column
  holding a string member->>'id';
- validity: whether body::jsonb accepts the bytes at all.

A body the FDW refuses must fail with HV000 (or 22P02/22021/22P05 from
PostgreSQL's own input functions/encoding checks; which one is printed), never
XX000 nor a lost connection, and PostgreSQL must refuse it too.

Known, documented differences (printed as "known difference", checked to
stay exactly as they are so a new parser cannot change them silently):
- a number member read into a text column: the FDW gives the token as
  written (1E+2, -0, 1.50e0), jsonb's ->> the normalized numeric (100, 0,
  1.50);
- a number too large for numeric (1e1000000) anywhere in the body: jsonb
  refuses the body (22003), the FDW reads it (the number is text to it) --
  unless the query reads a json_key '*' jsonb column (22003 then; a column
  the query does not read is not converted);
- duplicate top-level "items" keys: jsonb keeps the last; the FDW reads the
  rows of every array in turn, a null one adds none, and an object among
  them is a shape error (HV000) even when the last one is an array.
Duplicate keys WITHIN an item agree: the last wins, for the FDW too (also
between a column's camelCase name and its exact name: the later one).

Environment (scripts/test.sh): PGHOST, PGPORT, PGUSER, MOCK_URL;
JSON_PROP_SEED, JSON_PROP_BODIES (default 300).  Uses the shared mock.
"""

import base64
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import check, database, main, mock  # noqa: E402
import pgwire  # noqa: E402

DB = "usage_fdw_t_json_property"
PATH = "/smp/powerplatform/environments"
SEED = int(os.environ.get("JSON_PROP_SEED", "20261202"))
NBODIES = int(os.environ.get("JSON_PROP_BODIES", "300"))
WEIRD_KEY = 'a"b\\c/\u00e9'           # the json_key of column weird

SETUP = r"""
SET client_min_messages = warning;
CREATE EXTENSION usage_fdw;
CREATE SERVER avepoint FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER avepoint OPTIONS (access_token 'test-token');
CREATE FOREIGN TABLE t (
  env_id       text    OPTIONS (json_key 'id'),
  display_name text,
  region       text    OPTIONS (json_key 'Region'),
  props        jsonb   OPTIONS (json_key 'properties'),
  amount       numeric OPTIONS (json_key 'amount'),
  amount_text  text    OPTIONS (json_key 'amount'),
  weird        text    OPTIONS (json_key 'a"b\c/é'),
  whole        jsonb   OPTIONS (json_key '*')
) SERVER avepoint OPTIONS (path '/smp/powerplatform/environments', rows '/items');
CREATE FOREIGN TABLE t_id (env_id text OPTIONS (json_key 'id'))
  SERVER avepoint OPTIONS (path '/smp/powerplatform/environments', rows '/items');
"""

COLS = ("env_id", "display_name", "region", "props", "amount", "amount_text", "weird", "whole")
FDW_SQL = ("SELECT env_id, display_name, region, props::text, amount::text, amount_text, weird, "
           "whole::text FROM t")

# PostgreSQL's reading with json: the last member with one of the keys
REF_SQL = """
WITH b AS (SELECT convert_from(decode('{b64}', 'base64'), 'UTF8')::json AS j),
e AS (SELECT x.e, x.n FROM b, json_array_elements(b.j -> 'items') WITH ORDINALITY x(e, n))
SELECT {cols} FROM e ORDER BY n
"""


def last_text(keys):
    return ("(SELECT v FROM json_each_text(e) WITH ORDINALITY k(k, v, o) WHERE k IN (%s) "
            "ORDER BY o DESC LIMIT 1)" % ", ".join(sql_lit(k) for k in keys))


def last_jsonb(keys):
    return ("(SELECT CASE WHEN json_typeof(v) = 'null' THEN NULL ELSE v::jsonb::text END "
            "FROM json_each(e) WITH ORDINALITY k(k, v, o) WHERE k IN (%s) "
            "ORDER BY o DESC LIMIT 1)" % ", ".join(sql_lit(k) for k in keys))


def sql_lit(s):
    return "'" + s.replace("'", "''") + "'"


REF_COLS = ", ".join([
    last_text(["id"]),
    last_text(["displayName", "display_name"]),
    last_text(["Region"]),
    last_jsonb(["properties"]),
    last_text(["amount"]) + "::numeric::text",
    last_text(["amount"]),
    last_text([WEIRD_KEY]),
    "e::jsonb::text",
])

JSONB_SQL = """
SELECT x.e::text,
       CASE WHEN jsonb_typeof(x.e -> 'properties') = 'null' THEN NULL ELSE (x.e -> 'properties')::text END,
       jsonb_typeof(x.e -> 'properties'),
       x.e ->> 'id', jsonb_typeof(x.e -> 'id'),
       CASE WHEN jsonb_typeof(x.e -> 'amount') = 'number' THEN (x.e ->> 'amount')::numeric::text END,
       x.e ->> 'amount', jsonb_typeof(x.e -> 'amount')
  FROM jsonb_array_elements(convert_from(decode('{b64}', 'base64'), 'UTF8')::jsonb -> 'items')
       WITH ORDINALITY x(e, n)
 ORDER BY x.n
"""

VALID_SQL = "SELECT convert_from(decode('{b64}', 'base64'), 'UTF8')::jsonb IS NOT NULL"

FDW_ERROR_STATES = {"HV000", "22P02", "22021", "22P05", "22003"}


# ---------------------------------------------------------------- generator

class Gen:
    """Random JSON text, written with every escape and spacing JSON allows."""

    def __init__(self, rnd):
        self.r = rnd

    def ws(self):
        return self.r.choice(["", "", "", " ", "\n", "\t", "\r\n  ", "  "])

    def esc_char(self, ch):
        """One character of a string, escaped one of the ways JSON allows."""
        r = self.r
        cp = ord(ch)
        simple = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                  "\r": "\\r", "\t": "\\t"}
        if cp < 0x20 or ch in '"\\':
            if ch in simple and r.random() < 0.7:
                return simple[ch]
            return "\\u%04x" % cp if r.random() < 0.5 else "\\u%04X" % cp
        if ch == "/" and r.random() < 0.5:
            return "\\/"
        if r.random() < 0.2:
            if cp > 0xFFFF:
                v = cp - 0x10000
                return "\\u%04x\\u%04x" % (0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
            return "\\u%04x" % cp
        return ch

    def raw_string(self):
        """A Python string (the value) with a mix of every kind of character."""
        r = self.r
        if r.random() < 0.1:
            return ""
        pieces = ["abc", "Z", " ", '"', "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x01", "\x1f",
                  "\u00e9", "\u00fc", "\u65e5\u672c", "\u20ac", "\U0001F600", "\U0001D11E", "\u2028",
                  "\uffff", "\x7f", "0", "null", "{", "}", "[", "]", ",", ":", "'", "\u00a0", "\ufeff"]
        return "".join(r.choice(pieces) for _ in range(r.randint(1, 8)))

    def string(self, s=None):
        if s is None:
            s = self.raw_string()
        return '"' + "".join(self.esc_char(c) for c in s) + '"'

    def number(self):
        r = self.r
        return r.choice([
            lambda: str(r.randint(-1000, 1000)),
            lambda: str(r.randint(-10**30, 10**30)),
            lambda: "%d.%0*d" % (r.randint(-99, 99), r.randint(1, 6), r.randint(0, 999999)),
            lambda: "%d%s%s%d" % (r.randint(-9, 9), r.choice("eE"), r.choice(["", "+", "-"]), r.randint(0, 40)),
            lambda: "%d.%d%s%s%d" % (r.randint(0, 9), r.randint(0, 99), r.choice("eE"),
                                     r.choice(["", "+", "-"]), r.randint(0, 300)),
            lambda: r.choice(["-0", "-0.0", "0", "0.0", "0e0", "-0E-0", "1.50", "100", "1E+2",
                              "123456789012345678901234567890.123456789"]),
        ])()

    def value(self, depth=0, kinds=None):
        r = self.r
        kinds = kinds or ["s", "s", "n", "n", "t", "f", "z", "o", "a"]
        if depth >= 3:
            kinds = [k for k in kinds if k not in "oa"] or ["s"]
        k = r.choice(kinds)
        if k == "s":
            return self.string()
        if k == "n":
            return self.number()
        if k == "t":
            return "true"
        if k == "f":
            return "false"
        if k == "z":
            return "null"
        if k == "o":
            n = r.randint(0, 3)
            members = [self.ws() + self.string(self.key()) + self.ws() + ":" + self.ws() +
                       self.value(depth + 1) + self.ws() for _ in range(n)]
            return "{" + (",".join(members) if members else self.ws()) + "}"
        n = r.randint(0, 3)
        elems = [self.ws() + self.value(depth + 1) + self.ws() for _ in range(n)]
        return "[" + (",".join(elems) if elems else self.ws()) + "]"

    def key(self):
        r = self.r
        return r.choice(["id", "x", "Id", "ID", "items", "nextLink", "", "a b", "k\u00e9", "amount",
                         "display_name", "\U0001F600", "properties", "nested"])

    def member_value(self, key):
        """A value fitted to the column that reads the key."""
        r = self.r
        if key == "amount":
            if r.random() < 0.85:
                return r.choice([self.number(), self.number(), "null"])
            # a numeric column also reads a string with a number in it
            return self.string(r.choice(["12.50", " 7 ", "NaN", "-Infinity", "1e3", "-0", "0.000"]))
        if key == "properties":
            # strings too: a jsonb column reads them as JSON strings
            return self.value(kinds=["s", "s", "n", "t", "f", "z", "o", "o", "a", "a"])
        return self.value()

    def item(self):
        r = self.r
        keys = []
        for k in ["id", "displayName", "display_name", "Region", "region", "REGION", "properties",
                  "amount", WEIRD_KEY, "unknown", "items", "totalCount", "nextLink", "Amount", "iD"]:
            if r.random() < 0.45:
                keys.append(k)
        if keys and r.random() < 0.3:          # duplicate keys within the item
            for _ in range(r.randint(1, 3)):
                keys.insert(r.randint(0, len(keys)), r.choice(keys))
        r.shuffle(keys)
        members = [self.ws() + self.string(k) + self.ws() + ":" + self.ws() + self.member_value(k) + self.ws()
                   for k in keys]
        return "{" + (",".join(members) if members else self.ws()) + "}"

    def body(self):
        r = self.r
        n = r.choice([0, 1, 1, 2, 3, 4, 6, 10])
        items = "[" + (",".join(self.ws() + self.item() + self.ws() for _ in range(n)) or self.ws()) + "]"
        top = [("items", items)]
        if r.random() < 0.3:
            top.append(("totalCount", str(r.randint(0, 99))))
        if r.random() < 0.3:
            top.append(("meta", self.value(kinds=["o", "a", "s"])))
        if r.random() < 0.2:
            top.append(("Items", "[{\"id\": \"not-these\"}]"))
        r.shuffle(top)
        return (self.ws() + "{" + ",".join(self.ws() + self.string(k) + self.ws() + ":" + self.ws() + v + self.ws()
                                           for k, v in top) + "}" + self.ws()).encode("utf-8")


# invalid bodies: (name, bytes)
INVALID = [
    ("truncated JSON", b'{"items": [{"id": "a"}, {"id": "b'),
    ("truncated after a comma", b'{"items": [{"id": "a"},'),
    ("lone high surrogate \\ud800", b'{"items": [{"id": "x\\ud800y"}]}'),
    ("lone low surrogate \\udc00", b'{"items": [{"id": "\\udc00"}]}'),
    ("high surrogate then a non-surrogate", b'{"items": [{"id": "\\ud83d\\u0041"}]}'),
    ("lone surrogate in an unread key", b'{"items": [{"zzz": "\\ud800"}]}'),
    ("invalid UTF-8 byte 0xff", b'{"items": [{"id": "a\xffb"}]}'),
    ("invalid UTF-8 0xc3 0x28", b'{"items": [{"id": "\xc3\x28"}]}'),
    ("overlong UTF-8 0xc0 0xaf", b'{"items": [{"id": "\xc0\xaf"}]}'),
    ("UTF-8 encoded surrogate 0xed 0xa0 0x80", b'{"items": [{"id": "\xed\xa0\x80"}]}'),
    ("truncated UTF-8 sequence at the end", b'{"items": [{"id": "a"}]}\xe6\x97'),
    ("invalid UTF-8 in an unread key", b'{"items": [{"q\xfe": 1}]}'),
    ("NUL byte", b'{"items": [{"id": "a\x00b"}]}'),
    ("trailing garbage", b'{"items": [{"id": "a"}]} x'),
    ("trailing second object", b'{"items": []}{}'),
    ("trailing brace", b'{"items": []}}'),
    ("raw control character in a string", b'{"items": [{"id": "a\x01b"}]}'),
    ("raw tab in a string", b'{"items": [{"id": "a\tb"}]}'),
    ("single quotes", b"{'items': []}"),
    ("trailing comma in an object", b'{"items": [{"id": "a",}]}'),
    ("trailing comma in the array", b'{"items": [{"id": "a"},]}'),
    ("NaN", b'{"items": [{"amount": NaN}]}'),
    ("leading zero", b'{"items": [{"amount": 01}]}'),
    ("plus sign", b'{"items": [{"amount": +1}]}'),
    ("bare decimal point", b'{"items": [{"amount": .5}]}'),
    ("decimal without digits", b'{"items": [{"amount": 1.}]}'),
    ("invalid escape \\x", b'{"items": [{"id": "\\x41"}]}'),
    ("short \\u escape", b'{"items": [{"id": "\\u41"}]}'),
    ("\\u0000 escape", b'{"items": [{"id": "a\\u0000b"}]}'),
    ("\\u0000 escape in an unread key", b'{"items": [{"zzz": "\\u0000"}]}'),
    ("BOM before the body", b'\xef\xbb\xbf{"items": []}'),
    ("unquoted key", b'{items: []}'),
    ("comment", b'{"items": [] /* c */}'),
    ("True capitalised", b'{"items": [{"id": True}]}'),
    ("empty body", b''),
    ("only whitespace", b'  \n'),
]
# truncations of one valid body at every few bytes
_T = b'{"items": [{"id": "a\\u00e9\\ud83d\\ude00", "amount": -1.5e3, "properties": {"k": [1, null]}}]}'
INVALID += [("truncated at byte %d" % n, _T[:n]) for n in range(1, len(_T), 7)]

# fixed valid bodies (name, bytes)
FIXED = [
    ("empty items array", b'{"items": []}'),
    ("empty item", b'{"items": [{}]}'),
    ("every escape", ('{"items": [{"id": "\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\ud83d\\ude00'
                      '\\uD834\\uDD1E\\uffff\\u0001", "Region": "\u00e9\u65e5\U0001F600"}]}').encode()),
    ("empty strings", b'{"items": [{"id": "", "displayName": "", "Region": "", "amount": null, "properties": {}}]}'),
    ("nulls", b'{"items": [{"id": null, "displayName": null, "properties": null, "amount": null}]}'),
    ("duplicate keys: the last wins", b'{"items": [{"id": "first", "id": "second", "amount": 1, "amount": 2}]}'),
    ("duplicate key: a value then null", b'{"items": [{"id": "first", "id": null}]}'),
    ("duplicate key: null then a value", b'{"items": [{"id": null, "id": "second"}]}'),
    ("duplicate key: nested then scalar", b'{"items": [{"id": {"a": 1}, "id": "s", "properties": [1], '
                                          b'"properties": {"b": 2}}]}'),
    ("duplicate key: scalar then nested", b'{"items": [{"id": "s", "id": [1, {"a": "b"}]}]}'),
    ("camelCase and exact name, camel last", b'{"items": [{"display_name": "exact", "displayName": "camel"}]}'),
    ("camelCase and exact name, exact last", b'{"items": [{"displayName": "camel", "display_name": "exact"}]}'),
    ("keys differing by case", b'{"items": [{"region": "lower", "REGION": "upper", "Region": "exact", "ID": "no"}]}'),
    ("escaped key names", b'{"items": [{"\\u0069d": "escaped-id", "a\\"b\\\\c\\/\\u00e9": "weird"}]}'),
    ("raw weird key", '{"items": [{"a\\"b\\\\c/\u00e9": "weird-raw"}]}'.encode()),
    ("nested values keep their text", b'{"items": [{"id": { "a" :\n[1 , 2.50, "x\\n"] }, "properties": [ ]}]}'),
    ("whitespace everywhere", b' \r\n\t{ "items" : [ { "id" : "a" } , { } ] } \n'),
    ("an items key inside an item", b'{"items": [{"items": [{"id": "inner"}], "id": "outer"}]}'),
    ("items after other keys", b'{"meta": {"items": [{"id": "no"}]}, "Items": [{"id": "no"}], '
                               b'"items": [{"id": "yes"}]}'),
    ("extra unknown keys", b'{"items": [{"zz": 1, "id": "a", "yy": {"id": "nested-no"}, "xx": [{"id": "no"}]}]}'),
    ("numbers as text", b'{"items": [{"id": 1E+2, "Region": -0, "amount": 1.50e0, "displayName": 123456789012345678901234567890}]}'),
    ("negative zero into numeric", b'{"items": [{"amount": -0}, {"amount": -0.0}, {"amount": -0e5}]}'),
    ("huge and tiny numbers into numeric", b'{"items": [{"amount": 1e300}, {"amount": 1e-300}, '
                                           b'{"amount": 123456789012345678901234567890123456789}]}'),
    ("booleans", b'{"items": [{"id": true, "Region": false, "properties": true}]}'),
    ("strings into jsonb stay JSON strings",
     b'{"items": [{"properties": "123"}, {"properties": "abc"}, {"properties": "true"}, '
     b'{"properties": "{\\"a\\": 1}"}, {"properties": "\\u00e9\\n\\ud83d\\ude00"}, {"properties": ""}]}'),
    ("many items", ('{"items": [%s]}' % ",".join('{"id": "r%d"}' % i for i in range(500))).encode()),
    ("long string", ('{"items": [{"id": "%s"}]}' % ("\\u00e9x" * 20000)).encode()),
    ("deep nesting", ('{"items": [{"properties": %s1%s}]}' % ("[" * 200, "]" * 200)).encode()),
]

# documented differences: (name, body, the FDW's query, what it gives now:
# its rows, or an SQLSTATE), checked to stay as they are
ID_SQL = "SELECT env_id FROM t"
PROPS_SQL = "SELECT props::text FROM t"
KNOWN = [
    ("a number too large for numeric, in a member not read: the FDW reads the body",
     b'{"items": [{"id": "a", "zzz": 1e1000000}]}', "SELECT env_id FROM t_id", [("a",)]),
    ("a number too large for numeric into text: the token's text",
     b'{"items": [{"id": 1e1000000}]}', "SELECT env_id FROM t_id", [("1e1000000",)]),
    ("a number too large for numeric, unread, beside an unselected json_key '*' jsonb column: "
     "read (the column is not converted when the query does not read it)",
     b'{"items": [{"id": "a", "zzz": 1e1000000}]}', ID_SQL, [("a",)]),
    ("a number too large for numeric, in the json_key '*' jsonb column: an error",
     b'{"items": [{"id": "a", "zzz": 1e1000000}]}', FDW_SQL, "22003"),
    ("duplicate top-level items: the FDW reads both arrays (jsonb: the last)",
     b'{"items": [{"id": "a"}], "items": [{"id": "b"}]}', ID_SQL, [("a",), ("b",)]),
    ("top-level items, then items null: the FDW reads the first (jsonb: null, no rows)",
     b'{"items": [{"id": "a"}], "items": null}', ID_SQL, [("a",)]),
    ("top-level items, then items an object: the FDW refuses the shape (jsonb: the object)",
     b'{"items": [{"id": "a"}], "items": {"id": "b"}}', ID_SQL, "HV000"),
    ("top-level items an object, then an array: the FDW refuses the shape (jsonb: the array)",
     b'{"items": {"id": "a"}, "items": [{"id": "b"}]}', ID_SQL, "HV000"),
    ("top-level items null, then an array: the FDW reads the array (as jsonb)",
     b'{"items": null, "items": [{"id": "b"}]}', ID_SQL, [("b",)]),
]


# ---------------------------------------------------------------- running

class Runner:
    def __init__(self):
        self.conn = pgwire.Connection(dbname=DB)
        self.lost = 0

    def q(self, sql):
        """(rows, error) of one statement; a lost connection reconnects."""
        try:
            r = self.conn.query(sql)
        except pgwire.ConnectionLost as e:
            self.lost += 1
            self.conn = pgwire.Connection(dbname=DB)
            return None, "LOST: %s" % e
        return r.rows, r.error

    def fdw(self, body):
        mock.reset()
        mock.add_faults([{"match": {"path_regex": "^" + PATH + "$"}, "times": 1,
                          "action": {"body_b64": base64.b64encode(body).decode()}}])
        return self.q(FDW_SQL)

    def fdw_trickled(self, body, piece, delay_ms):
        """The FDW's reading of body sent `piece` bytes at a time."""
        mock.reset()
        mock.add_faults([{"match": {"path_regex": "^" + PATH + "$"}, "times": 1,
                          "action": {"body_b64": base64.b64encode(body).decode(),
                                     "trickle": {"bytes": piece, "delay_ms": delay_ms}}}])
        return self.q(FDW_SQL)

    def ref(self, body):
        b64 = base64.b64encode(body).decode()
        return (self.q(REF_SQL.format(b64=b64, cols=REF_COLS)), self.q(JSONB_SQL.format(b64=b64)),
                self.q(VALID_SQL.format(b64=b64)))


def state(err):
    if err is None:
        return "ok"
    if isinstance(err, str):
        return err
    return err.sqlstate


def show(body):
    s = body.decode("utf-8", "backslashreplace")
    return s if len(s) < 1500 else s[:1500] + "...(%d bytes)" % len(body)


def jsonb_diffs(frows, jrows):
    """Where the FDW's rows differ from the jsonb reading: (hard, soft) lists
    (soft: a number's text in a text column, the known normalization)."""
    hard, soft = [], []
    if len(frows) != len(jrows):
        return ["%d rows, jsonb has %d" % (len(frows), len(jrows))], soft
    for i, (f, j) in enumerate(zip(frows, jrows)):
        whole, props, props_t, jid, jid_t, jamount, jamount_t, jamount_type = j
        if f[7] != whole:
            hard.append("row %d whole: fdw %r jsonb %r" % (i + 1, f[7], whole))
        if props_t != "string" and f[3] != props:
            hard.append("row %d props: fdw %r jsonb %r" % (i + 1, f[3], props))
        if jid_t == "string" and f[0] != jid:
            hard.append("row %d id: fdw %r jsonb %r" % (i + 1, f[0], jid))
        if jid_t == "number" and f[0] != jid:
            soft.append("id %r -> jsonb %r" % (f[0], jid if len(jid) < 40 else jid[:30] + "..."))
        if jamount_type == "number":
            if f[4] != jamount:
                hard.append("row %d amount: fdw %r jsonb %r" % (i + 1, f[4], jamount))
            if f[5] != jamount:
                soft.append("amount %r -> jsonb %r" % (f[5], jamount if len(jamount) < 40 else jamount[:30] + "..."))
    return hard, soft


def compare(run, name, body, stats):
    """One body: the FDW's rows against PostgreSQL's; True when they agree."""
    frows, ferr = run.fdw(body)
    (rrows, rerr), (jrows, jerr), (_, verr) = run.ref(body)
    fs, rs, vs = state(ferr), state(rerr), state(verr)
    stats.setdefault("fdw " + fs, 0)
    stats["fdw " + fs] += 1
    detail = "body: %s\nfdw: %s\nref: %s\njsonb valid: %s" % (
        show(body), frows if ferr is None else ferr, rrows if rerr is None else rerr, vs)
    if ferr is not None:
        ok = fs in FDW_ERROR_STATES and rerr is not None
        if ok and vs == "ok":
            stats.setdefault("fdw refuses, jsonb accepts", []).append((name, fs, show(body)))
        return check("%s: the FDW refuses (%s) as PostgreSQL does (json %s, jsonb %s)" % (name, fs, rs, vs),
                     ok, detail)
    if rerr is not None:
        return check("%s: the FDW accepts as PostgreSQL does" % name, False, detail)
    if vs != "ok":
        stats.setdefault("fdw accepts, jsonb refuses", []).append((name, vs, show(body)))
    same = [tuple(r) for r in frows] == [tuple(r) for r in rrows]
    hard, soft = jsonb_diffs(frows, jrows) if jerr is None else ([], [])
    stats["number text normalized"] = stats.get("number text normalized", 0) + len(soft)
    if soft and len(stats.setdefault("soft examples", [])) < 6:
        stats["soft examples"].extend(soft[:2])
    return check("%s: %d rows as PostgreSQL reads them" % (name, len(frows)),
                 same and not hard, detail + ("\njsonb differences: %s" % hard if hard else ""))


def known(run, name, body, sql, expect):
    """A documented difference: print the FDW's and PostgreSQL's readings;
    check that the FDW's stays as recorded."""
    mock.reset()
    mock.add_faults([{"match": {"path_regex": "^" + PATH + "$"}, "times": 1,
                      "action": {"body_b64": base64.b64encode(body).decode()}}])
    frows, ferr = run.q(sql)
    (rrows, rerr), (jrows, jerr), (_, verr) = run.ref(body)
    print("known difference: %s\n  body:  %s\n  fdw:   %s\n  json:  %s\n  jsonb: %s" % (
        name, show(body), [tuple(r) for r in frows] if ferr is None else ferr,
        rrows if rerr is None else rerr,
        ("elements %s" % [r[0] for r in jrows]) if jerr is None else jerr), flush=True)
    if isinstance(expect, str):
        ok = ferr is not None and state(ferr) == expect
    else:
        ok = ferr is None and [tuple(r) for r in frows] == expect
    return check("known: %s" % name, ok, "expected %s, got %s" % (expect, frows if ferr is None else ferr))


# bodies over the size from which the FDW reads a body as it arrives
# (STREAM_START_BYTES in fetch.c), and the sizes of the pieces they are sent in
STREAM_BODY_BYTES = 300 * 1024
PIECES = ((1021, 1), (4093, 2), (257, 0), (16391, 5))


def big_body(gen):
    """A body of random items (every escape, character and spacing) over
    STREAM_BODY_BYTES, with the top-level keys before and after the items."""
    items, size = [], 0
    while size < STREAM_BODY_BYTES:
        items.append(gen.item())
        size += len(items[-1]) + 1
    return ('{"totalCount": %d, "meta": {"items": [{"id": "no"}]}, "items": [%s], "nextLink": null}'
            % (len(items), ",".join(items))).encode()


def err_text(err):
    return "%s: %s (%s)" % (err.sqlstate, err.message, getattr(err, "detail", "")) if err else None


def streamed(run, gen, rnd):
    """Big bodies read as they arrive, in pieces cut anywhere (mid-token,
    mid-escape, mid-character): the same rows, or the same error, as the
    same bytes read in one piece, and as PostgreSQL reads them."""
    for k in range(3):
        body = big_body(gen)
        whole_rows, whole_err = run.fdw(body)
        (ref_rows, ref_err), _, _ = run.ref(body)
        check("streamed body %d (%d bytes): %d rows as PostgreSQL reads them"
              % (k + 1, len(body), len(ref_rows or [])),
              whole_err is None and ref_err is None and
              [tuple(r) for r in whole_rows] == [tuple(r) for r in ref_rows],
              "fdw: %s\nref: %s" % (whole_err or len(whole_rows), ref_err))
        for piece, delay in PIECES:
            rows, err = run.fdw_trickled(body, piece, delay)
            check("streamed body %d in pieces of %d bytes: the same rows" % (k + 1, piece),
                  err is None and [tuple(r) for r in rows] == [tuple(r) for r in whole_rows],
                  "error: %s" % err_text(err) if err else "%d rows, %d expected"
                  % (len(rows), len(whole_rows)))
    # damage near the end, after rows have been read: the same error either way
    body = big_body(gen)
    tail = body.rindex(b"]")
    damaged = [
        ("cut short", body[:len(body) - 7]),
        ("a byte that is not UTF-8", body[:tail - 5] + b"\xff" + body[tail - 4:]),
        ("a character cut by the end", body[:tail] + b',{"x": "\xe2\x82"'),
        ("an invalid escape", body[:tail] + b',{"unknown": "a\\qb"}]}'),
        ("a lone surrogate in a member not read", body[:tail] + b',{"unknown": "\\ud800x"}]}'),
        ("garbage after the body", body + b"x"),
        ("a missing comma", body[:tail] + b'{"id": "z"}]}'),
    ]
    for name, bad in damaged:
        whole_rows, whole_err = run.fdw(bad)
        (_, ref_err), _, _ = run.ref(bad)
        check("streamed, %s: refused (%s) as PostgreSQL does"
              % (name, whole_err.sqlstate if whole_err else "accepted"),
              whole_err is not None and whole_err.sqlstate in FDW_ERROR_STATES and ref_err is not None,
              "fdw: %s\nref: %s" % (err_text(whole_err), ref_err))
        piece, delay = PIECES[rnd.randrange(len(PIECES))]
        rows, err = run.fdw_trickled(bad, piece, delay)
        check("streamed, %s, in pieces of %d bytes: the same error" % (name, piece),
              err is not None and whole_err is not None and err_text(err) == err_text(whole_err),
              "pieces: %s\nwhole: %s" % (err_text(err), err_text(whole_err)))


def test():
    with database(DB, SETUP, created="createdb", setup="setup: a declared foreign table"):
        t0 = time.monotonic()
        run = Runner()
        stats = {}
        rnd = random.Random(SEED)
        gen = Gen(rnd)
        print("seed %d, %d random bodies" % (SEED, NBODIES), flush=True)

        for name, body in FIXED:
            compare(run, name, body, stats)
        for name, body in INVALID:
            frows, ferr = run.fdw(body)
            (_, rerr), _, (_, verr) = run.ref(body)
            fs, vs = state(ferr), state(verr)
            stats["fdw " + fs] = stats.get("fdw " + fs, 0) + 1
            if ferr is None:
                check("invalid body, %s: the FDW refuses it" % name, False,
                      "body: %s\nfdw: %s\njsonb: %s" % (show(body), frows, vs))
                continue
            if vs == "ok":
                stats.setdefault("fdw refuses, jsonb accepts", []).append((name, fs, show(body)))
            check("invalid body, %s: FDW %s, jsonb %s" % (name, fs, vs),
                  fs in FDW_ERROR_STATES, "body: %s\nfdw: %s\njsonb: %s" % (show(body), ferr, verr))

        # random bodies, and random damage to some of them
        for i in range(NBODIES):
            body = gen.body()
            if rnd.random() < 0.08:
                kind = rnd.choice(["truncate", "garbage", "byte"])
                if kind == "truncate":
                    body = body[:rnd.randint(1, max(1, len(body) - 1))]
                elif kind == "garbage":
                    body = body + rnd.choice([b"x", b"}", b",", b"]", b"{}", b"\xff"])
                else:
                    p = rnd.randint(0, len(body) - 1)
                    body = body[:p] + rnd.choice([b"\xff", b"\xc3", b"\x00", b"\x80"]) + body[p + 1:]
                name = "random body %d (%s)" % (i + 1, kind)
            else:
                name = "random body %d" % (i + 1)
            compare(run, name, body, stats)

        streamed(run, gen, rnd)

        # the documented differences, checked to stay as they are
        for k in KNOWN:
            known(run, *k)

        check("no lost connection (no crash)", run.lost == 0, "%d lost connections" % run.lost)
        print("FDW outcomes: %s" % ", ".join("%s: %d" % (k[4:], v) for k, v in sorted(stats.items())
                                             if k.startswith("fdw ") and isinstance(v, int)), flush=True)
        print("numbers whose text in a text column differs from jsonb's ->> (the token as written): %d, e.g. %s"
              % (stats.get("number text normalized", 0), "; ".join(stats.get("soft examples", []))), flush=True)
        for k in ("fdw refuses, jsonb accepts", "fdw accepts, jsonb refuses"):
            for name, st, b in stats.get(k, []):
                print("%s: %s (%s): %s" % (k, name, st, b), flush=True)
        print("%.1f s" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    main(test)
