#!/usr/bin/env python3
"""A real SMTP server for the mail driver's tests (aiosmtpd), on loopback.

Usage: server.py OUTBOX_DIR

Listens on 127.0.0.1 on a free port, prints {"port": N} once it accepts connections,
and exits when its stdin closes (the test holds the other end). Every message it
accepts is written to OUTBOX_DIR/N.json as {"mail_from", "rcpt_tos", "content"} (the
message exactly as received, CRLF line ends). A recipient whose local part starts with
"reject" is refused with 550, as a server refuses an unknown mailbox.

Needs aiosmtpd (PyPI); the tests install it into a virtual environment when missing.
"""
import json
import os
import socket
import sys
import threading

from aiosmtpd.controller import Controller


class Outbox:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].startswith("reject"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            path = os.path.join(self.directory, "%d.json" % self.count)
        content = envelope.original_content or envelope.content
        with open(path + ".tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "content": content.decode("utf-8", "replace")}, f)
        os.rename(path + ".tmp", path)
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    directory = sys.argv[1]
    os.makedirs(directory, exist_ok=True)
    port = free_port()
    controller = Controller(Outbox(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print(json.dumps({"port": port}), flush=True)
    sys.stdin.read()
    controller.stop()
    os._exit(0)


if __name__ == "__main__":
    main()
