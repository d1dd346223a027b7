#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) for resetd's tests, benchmarks and manual trials.

It listens on loopback, stores every accepted message, and can be told to misbehave:

  python3 scripts/smtp-test-server.py --dir /tmp/mail [--port 2525]
      [--tls none|starttls|implicit --cert server.pem --key server.key]
      [--auth USER:PASSWORD] [--smtputf8]
      [--data-reply "451 4.3.0 Try again later"]...  [--then accept|repeat]
      [--reject-rcpt REGEX]

Every accepted message is written to DIR/NNNNNN.eml (the raw message, atomically) with
DIR/NNNNNN.json beside it (envelope sender, recipients, the AUTH user, whether TLS was on, and
the client's address and port, which tell connections apart).
Every DATA answer is appended to DIR/transactions.jsonl. The first line on standard output is
`LISTENING port=N` once the socket is bound (with --port 0, N is the port the OS picked).

--data-reply answers the n-th DATA command of the whole run with the n-th reply given (repeat the
flag for a sequence); after the sequence, --then accept (the default) accepts every message and
--then repeat keeps giving the last reply. --reject-rcpt refuses matching recipients with
"550 5.1.1 mailbox unavailable".

Needs aiosmtpd (`python3 -m pip install aiosmtpd`; scripts/test.sh installs it).
"""

import argparse
import asyncio
import json
import os
import re
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    """The aiosmtpd handler: answers RCPT and DATA as configured and stores what it accepts."""

    def __init__(self, directory, data_replies, then, reject_rcpt):
        self.dir = directory
        self.data_replies = list(data_replies)
        self.then = then
        self.reject_rcpt = re.compile(reject_rcpt) if reject_rcpt else None
        self.data_seen = 0
        self.stored = 0

    def _log(self, record):
        with open(os.path.join(self.dir, "transactions.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject_rcpt and self.reject_rcpt.search(address):
            self._log({"event": "rcpt", "rcpt": address, "reply": "550"})
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _data_reply(self):
        n = self.data_seen
        self.data_seen += 1
        if n < len(self.data_replies):
            return self.data_replies[n]
        if self.then == "repeat" and self.data_replies:
            return self.data_replies[-1]
        return None

    async def handle_DATA(self, server, session, envelope):
        reply = self._data_reply()
        if reply is not None:
            self._log({"event": "data", "rcpt": envelope.rcpt_tos, "reply": reply})
            return reply
        self.stored += 1
        name = "%06d" % self.stored
        tmp = os.path.join(self.dir, ".%s.tmp" % name)
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_user": session.auth_data.login.decode()
            if isinstance(session.auth_data, LoginPassword)
            else None,
            # session.ssl is set after STARTTLS only; the transport knows about implicit TLS too.
            # The client's address and port: one per connection, so tests can see reuse.
            "peer": list(session.peer) if session.peer else None,
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
        }
        with open(os.path.join(self.dir, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(meta, f)
        os.rename(tmp, os.path.join(self.dir, name + ".eml"))
        self._log({"event": "data", "rcpt": envelope.rcpt_tos, "reply": "250"})
        return "250 2.0.0 Message accepted for delivery"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        # auth_data becomes session.auth_data, which the stored .json reports. handled=False makes
        # aiosmtpd answer a failure with 535 itself (by default it would leave the client waiting).
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dir", required=True)
    p.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth", help="USER:PASSWORD; AUTH becomes required")
    p.add_argument("--smtputf8", action="store_true")
    p.add_argument("--data-reply", action="append", default=[])
    p.add_argument("--then", choices=["accept", "repeat"], default="accept")
    p.add_argument("--reject-rcpt")
    a = p.parse_args()

    os.makedirs(a.dir, exist_ok=True)
    handler = Sink(a.dir, a.data_reply, a.then, a.reject_rcpt)

    context = None
    if a.tls != "none":
        if not (a.cert and a.key):
            p.error("--tls %s needs --cert and --key" % a.tls)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)

    kwargs = {"enable_SMTPUTF8": a.smtputf8, "hostname": "smtp-test-server.localhost"}
    if a.tls == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    if a.auth:
        user, _, password = a.auth.partition(":")
        # With implicit TLS the whole session is encrypted, but aiosmtpd only knows about STARTTLS.
        kwargs.update(
            authenticator=authenticator(user, password),
            auth_required=True,
            auth_require_tls=(a.tls == "starttls"),
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **kwargs),
        host=a.host,
        port=a.port,
        ssl=context if a.tls == "implicit" else None,
    )
    port = server.sockets[0].getsockname()[1]
    print("LISTENING port=%d" % port, flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
