#!/usr/bin/env python3
"""Makes the seed of a new Intercloud Root cluster on the control node.

The seed is one encoded Raft command (raft/README.md, "Command encoding
(version 1)") that every bootstrap node names in `[cluster] seed`; the
state machine applies it once, whichever node submits it first, because
it carries the fixed client id 1 and sequence 1 (as `icroot dev`'s
DIR/seed.cmd, node/dev_seed.c). It holds a BATCH of:

- one RDF_LOAD per ontology file (`*.ttl` of --ontology in name order;
  `sample*` only with --sample), by subject, replacing, into
  urn:icroot:graph:<file name without extension>, base file:///ontology/;
  the sample catalog's domain is rewritten to --domain;
- one KV_PUT in the accounts database per --account NAME:PASSWORD_FILE[:admin],
  with the record node/accounts.c makes (ic_node_account_record): SCRAM-SHA-1
  and SCRAM-SHA-256 credentials, a 16-byte random salt, 4096 iterations.

The product has no operator command for this (icroot dev makes its seed
itself); this script writes the same bytes icroot dev would for the same
inputs, salts aside. Passwords must be printable ASCII (SASLprep is then
the identity).

usage: icroot-seed.py --out FILE --domain D --ontology DIR [--sample]
                      --account admin:/path/admin.pw:admin ...
"""
import argparse
import hashlib
import hmac
import json
import os
import struct
import sys

SAMPLE_DOMAIN = "intercloudexchg.test"
SEED_CLIENT = 1
SEED_SEQ = 1
VERSION = 1
T_RDF_LOAD = 0x03
T_KV_PUT = 0x10
T_BATCH = 0x20
SYNTAX_TURTLE = 1
MODE_BY_SUBJECT = 1
FLAG_REPLACE = 1
DB_ACCOUNTS = 1
ITERATIONS = 4096
SALT_LEN = 16
LOCAL_BAD = set(" @/:<>&'\"\t\r\n")


def str16(b):
    if len(b) > 4096:
        raise ValueError("IRI longer than 4096 bytes")
    return struct.pack(">H", len(b)) + b


def blob32(b):
    return struct.pack(">I", len(b)) + b


def rdf_load(graph, base, text):
    return (struct.pack(">BBBB", T_RDF_LOAD, SYNTAX_TURTLE, MODE_BY_SUBJECT,
                        FLAG_REPLACE) + str16(graph.encode()) +
            str16(base.encode()) + blob32(text))


def kv_put(db, key, val):
    if not 1 <= len(key) <= 511:
        raise ValueError("account name length")
    return (struct.pack(">BB", T_KV_PUT, db) + struct.pack(">H", len(key)) +
            key + blob32(val))


def scram(name, password, salt):
    h = getattr(hashlib, name)
    salted = hashlib.pbkdf2_hmac(name, password, salt, ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", h).digest()
    server_key = hmac.new(salted, b"Server Key", h).digest()
    return {"salt": salt.hex(), "i": ITERATIONS,
            "stored": h(client_key).hexdigest(), "server": server_key.hex()}


def account_record(password, admin):
    rec = {"v": 1, "admin": bool(admin),
           "sha1": scram("sha1", password, os.urandom(SALT_LEN)),
           "sha256": scram("sha256", password, os.urandom(SALT_LEN))}
    return json.dumps(rec, separators=(",", ":")).encode()


def read_password(path):
    with open(path, "rb") as f:
        pw = f.read().split(b"\n")[0].rstrip(b"\r")
    if not pw or any(c < 0x21 or c > 0x7e for c in pw):
        sys.exit("icroot-seed: %s: the password must be printable ASCII "
                 "without blanks" % path)
    return pw


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--ontology", required=True)
    ap.add_argument("--sample", action="store_true")
    ap.add_argument("--account", action="append", default=[])
    a = ap.parse_args()

    ops = []
    names = sorted(n for n in os.listdir(a.ontology)
                   if n.endswith(".ttl") and len(n) >= 5 and
                   (a.sample or not n.startswith("sample")))
    if not names:
        sys.exit("icroot-seed: no .ttl file in %s" % a.ontology)
    for n in names:
        with open(os.path.join(a.ontology, n), "rb") as f:
            text = f.read()
        if n.startswith("sample") and a.domain != SAMPLE_DOMAIN:
            text = text.replace(SAMPLE_DOMAIN.encode(), a.domain.encode())
        # the graph is named after the file up to its first '.'
        ops.append(rdf_load("urn:icroot:graph:" + n.split(".")[0],
                            "file:///ontology/", text))
    for spec in a.account:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "admin"):
            sys.exit("icroot-seed: --account NAME:PASSWORD_FILE[:admin]")
        name = parts[0]
        if not name or set(name) & LOCAL_BAD or name != name.lower():
            sys.exit("icroot-seed: bad account name %r" % name)
        ops.append(kv_put(DB_ACCOUNTS, name.encode(),
                          account_record(read_password(parts[1]),
                                         len(parts) == 3)))
    if len(ops) > 1024:
        sys.exit("icroot-seed: too many operations")
    cmd = (struct.pack(">BBQQ", VERSION, T_BATCH, SEED_CLIENT, SEED_SEQ) +
           struct.pack(">H", len(ops)) + b"".join(ops))
    cmd += b"\0" * (-len(cmd) % 8)
    tmp = a.out + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(cmd)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, a.out)


if __name__ == "__main__":
    main()
