#!/usr/bin/env python3
"""Verifies a message's DKIM signature with dkimpy (an implementation independent of the
server's), fetching the key record from the test DNS server's files. Prints `pass` or
`fail` and exits 0 or 1.

    dkim_verify.py MESSAGE_FILE DNS_DIR
"""
import os
import sys

import dkim

message_file, dns_dir = sys.argv[1], sys.argv[2]


def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    path = os.path.join(dns_dir, name.rstrip(".").lower() + ".TXT")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read().strip().encode()


with open(message_file, "rb") as f:
    data = f.read()
ok = dkim.verify(data, dnsfunc=dnsfunc)
print("pass" if ok else "fail")
sys.exit(0 if ok else 1)
