#!/usr/bin/env python3
"""A real DNS server for the test suite (dnslib): answers TXT and CNAME questions from files
in DIR that tests write, so every test publishes its own records while one server runs.
A file `<name>.TXT` holds one TXT value per line; `<name>.CNAME` one target. `<name>.A` and
`<name>.AAAA` hold one answer per line, comma-separated addresses: the n-th question gets
the n-th line (the last repeats), with TTL 0, so a test can make the answer change between
two lookups (DNS rebinding); `<name>.<kind>.queries` counts the questions. Anything else is
NXDOMAIN.

    dns_server.py PORT DIR
"""
import os
import sys
import time

import ipaddress
import threading

from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, TXT, A
from dnslib.server import BaseResolver, DNSServer

PORT, DIR = int(sys.argv[1]), sys.argv[2]


LOCK = threading.Lock()
ASKED = {}


def addresses(path, kind):
    """The answer for this question of an address file, and counts it."""
    with LOCK:
        n = ASKED.get(path, 0)
        ASKED[path] = n + 1
        with open(path + ".queries", "w") as f:
            f.write(str(n + 1))
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    line = lines[min(n, len(lines) - 1)] if lines else ""
    return [a.strip() for a in line.split(",") if a.strip()]


class Files(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        path = os.path.join(DIR, f"{name}.{kind}")
        if kind in ("A", "AAAA") and os.path.exists(path):
            for address in addresses(path, kind):
                # dnslib reads only the plain hex form of IPv6 (not `::ffff:127.0.0.1`).
                rdata = A(address) if kind == "A" else AAAA(ipaddress.IPv6Address(address).exploded)
                reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=rdata, ttl=0))
        elif kind in ("TXT", "CNAME") and os.path.exists(path):
            with open(path) as f:
                lines = [line.rstrip("\n") for line in f if line.strip()]
            for line in lines:
                if kind == "TXT":
                    # Long values travel as several character-strings of at most 255 bytes.
                    chunks = [line[i:i + 255] for i in range(0, len(line), 255)]
                    reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=1))
                else:
                    reply.add_answer(RR(request.q.qname, QTYPE.CNAME, rdata=CNAME(line), ttl=1))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


server = DNSServer(Files(), port=PORT, address="127.0.0.1")
server.start_thread()
print(f"listening on {PORT}", flush=True)
while True:
    time.sleep(3600)
