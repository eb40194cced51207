"""A real SMTP server for the transport tests: aiosmtpd in its own process, keeping each
message it accepts as a file (and the client's port beside it, to count connections).

``python tests/smtp_server.py --dir D --port P [--starttls CERT KEY | --ssl CERT KEY]
[--user U --password W]`` prints ``READY`` when it listens.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Keep:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        name = f"{self.count:05d}"
        (self.folder / f"{name}.eml").write_bytes(envelope.original_content)
        (self.folder / f"{name}.peer").write_text(
            f"{session.peer[1]} {' '.join(envelope.rcpt_tos)}"
        )
        return "250 OK"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--starttls", nargs=2)
    parser.add_argument("--ssl", nargs=2)
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    pair = args.starttls or args.ssl
    if pair:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*pair)
        kwargs["tls_context" if args.starttls else "ssl_context"] = context
        if args.starttls:
            kwargs["require_starttls"] = True
    if args.user:

        def check(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (
                data.login.decode(),
                data.password.decode(),
            ) == (args.user, args.password)
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=check, auth_required=True, auth_require_tls=bool(pair))
    controller = Controller(
        Keep(args.dir),
        hostname="127.0.0.1",
        port=args.port,
        server_hostname="localhost",
        ready_timeout=20,
        **kwargs,
    )
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
