#!/usr/bin/env python3
"""Writes N JSON Lines import rows to stdout: `import-file.py N [hash]`. With `hash`, every row
carries the same real bcrypt (cost 10) hash, which the import only parses (no work at import)."""
import json, sys

n = int(sys.argv[1])
h = None
if len(sys.argv) > 2:
    import bcrypt
    h = bcrypt.hashpw(b"correct horse battery", bcrypt.gensalt(rounds=10)).decode()
out = sys.stdout
for i in range(n):
    row = {"login": f"user{i:07d}", "email": f"user{i}@example.org", "display_name": f"User {i}",
           "roles": ["staff"], "attributes": {"dept": "d" + str(i % 50)}}
    if h:
        row["password_hash"] = h
    out.write(json.dumps(row) + "\n")
