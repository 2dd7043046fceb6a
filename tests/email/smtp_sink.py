#!/usr/bin/env python3
"""A real SMTP server for the test suite (aiosmtpd): STARTTLS with a test CA's certificate,
required before MAIL; every accepted message is written to DIR as one JSON file
{mail_from, rcpt_tos, data} named by a counter. Recipients steer the reply, per message:

    defer-once-*@…   421 on the first attempt of a Message-ID, 250 after
    reject-*@…       550 (a hard bounce)
    slow-*@…         250 after 200 ms (deliveries in flight long enough to interrupt)

    smtp_sink.py PORT CERT KEY DIR
"""
import asyncio
import email
import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

PORT, CERT, KEY, DIR = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
SEEN = set()
LOCK = threading.Lock()
COUNTER = [0]


class Sink:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].startswith("reject-"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(r.split("@")[0].startswith("slow-") for r in envelope.rcpt_tos):
            await asyncio.sleep(0.2)
        message = email.message_from_bytes(envelope.content)
        message_id = message.get("Message-ID", "")
        if any(r.split("@")[0].startswith("defer-once-") for r in envelope.rcpt_tos):
            with LOCK:
                first = message_id not in SEEN
                SEEN.add(message_id)
            if first:
                return "421 4.3.2 try again later"
        with LOCK:
            COUNTER[0] += 1
            name = os.path.join(DIR, f"{COUNTER[0]:08d}.json")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        with open(name + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(name + ".tmp", name)
        return f"250 2.0.0 queued as {COUNTER[0]}"


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(CERT, KEY)
controller = Controller(Sink(), hostname="127.0.0.1", port=PORT, tls_context=context,
                        require_starttls=True)
controller.start()
print(f"listening on {PORT}", flush=True)
threading.Event().wait()
