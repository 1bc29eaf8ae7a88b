"""A real SMTP server on loopback for the portal's tests (aiosmtpd).

Every accepted message is written to DIR/messages/NNNN.json, decoded: its
Message-ID, recipients, subject and text body. Two files steer it while it
runs: DIR/refuse makes it answer RCPT with the file's content, or with 451
(try later) when it is empty; DIR/stall makes it hold RCPT until the file is
removed (a client killed meanwhile never sends the data), and it writes
DIR/stalling once a client is held. Prints "READY <port>" once it listens.

    python3 smtp_server.py DIR [PORT]
"""
import asyncio
import json
import os
import signal
import socket
import sys
from email import message_from_bytes
from email.policy import default

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, root):
        self.root = root
        self.inbox = os.path.join(root, "messages")
        os.makedirs(self.inbox, exist_ok=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if os.path.exists(os.path.join(self.root, "stall")):
            open(os.path.join(self.root, "stalling"), "w").close()
        while os.path.exists(os.path.join(self.root, "stall")):
            await asyncio.sleep(0.05)
        refuse = os.path.join(self.root, "refuse")
        if os.path.exists(refuse):
            with open(refuse, encoding="utf-8") as f:
                answer = f.read().strip()
            return answer or "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=default)
        body = message.get_body(preferencelist=("plain",))
        record = {
            "message_id": str(message.get("Message-ID", "")),
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(message.get("Subject", "")),
            "body": body.get_content() if body is not None else "",
        }
        n = len(os.listdir(self.inbox))
        path = os.path.join(self.inbox, f"{n:06d}-{os.getpid()}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.replace(path + ".tmp", path)
        return "250 Message accepted for delivery"


def main():
    root = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if port == 0:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    controller = Controller(Handler(root), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"READY {port}", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
