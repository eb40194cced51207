"""Mail transports that need no provider account: a Maildir outbox and plain SMTP.

:class:`MaildirTransport` is the embedded default: each message becomes one file in
``new/`` of a Maildir (read it with ``mutt -f var/outbox`` or any mail client). The
file name comes from the Message-ID, which steadyhand derives from the idempotency key,
so handing the same message over twice leaves one file. Files have LF line endings, as
Maildir readers (mutt, Dovecot, :mod:`mailbox`) expect; CRLF is for the SMTP wire only.

:class:`SmtpTransport` speaks SMTP with STARTTLS, implicit TLS or neither; the password
comes from the environment variable the config names, never from the config itself.
A message with 8-bit content goes as ``BODY=8BITMIME`` (RFC 6152) to a server that offers
8BITMIME, and re-encoded to 7-bit transfer encodings (base64) for one that does not.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import smtplib
import ssl
import tempfile
import threading
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from connectors.secrets import private_dir
from worker.core.errors import PermanentError, TransientError, UserError

logger = logging.getLogger(__name__)


class MaildirTransport:
    """Writes each message into a Maildir folder (created when missing)."""

    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path_for(self, message: EmailMessage) -> Path:
        mid = str(message.get("Message-ID") or "")
        if not mid:
            raise ValueError("a message for the outbox needs a Message-ID")
        digest = hashlib.sha256(mid.encode()).hexdigest()[:40]
        return self.folder / "new" / f"{digest}.steadyhand.eml"

    def send(self, message: EmailMessage) -> str:
        private_dir(self.folder, ours=True)  # messages hold personal data: 0700 folders
        for sub in ("tmp", "new", "cur"):
            private_dir(self.folder / sub, ours=True)
        target = self.path_for(message)
        delivered = [target, *(self.folder / "cur").glob(f"{target.stem}*")]
        if any(p.exists() for p in delivered):
            logger.info("outbox: %s already delivered as %s", message["Message-ID"], target.name)
            return str(target)
        fd, tmp = tempfile.mkstemp(dir=self.folder / "tmp", prefix=f"{target.name}.")  # 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(message.as_bytes(policy=message.policy.clone(linesep="\n")))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        logger.info("outbox: wrote %s (%s)", target.name, message["Message-ID"])
        return str(target)


class SmtpTransport:
    """Sends through an SMTP server; ``security`` is ``starttls``, ``ssl`` or ``none``.

    Each thread keeps one connection open and reuses it for the messages it sends (a
    ``NOOP`` checks it is still alive), so a batch costs one handshake per worker."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int = 587,
        security: str = "starttls",
        username: str | None = None,
        password_env: str | None = None,
        timeout: float = 30,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password_env, self.timeout = username, password_env, timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._local = threading.local()  # one connection per worker thread, reused

    @property
    def _conn(self) -> smtplib.SMTP | None:
        return getattr(self._local, "conn", None)

    @_conn.setter
    def _conn(self, value: smtplib.SMTP | None) -> None:
        self._local.conn = value

    def _password(self) -> str | None:
        if not self.password_env:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise UserError(
                f"mail.smtp.password_env names {self.password_env}, which is not set — "
                f"export {self.password_env}=… before starting steadyhand"
            )
        return value

    def _connect(self) -> smtplib.SMTP:
        if self._conn is not None:
            try:
                if self._conn.noop()[0] == 250:
                    return self._conn
            except smtplib.SMTPException:
                pass
            self.close()
        conn: smtplib.SMTP
        if self.security == "ssl":
            conn = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.ssl_context
            )
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                conn.starttls(context=self.ssl_context)
            if self.username:
                conn.login(self.username, self._password() or "")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def send(self, message: EmailMessage) -> str:
        try:
            conn = self._connect()
            conn.ehlo_or_helo_if_needed()  # the server's extensions, for _for_server
            wire, options = _for_server(conn, message)
            refused = conn.send_message(wire, mail_options=options)
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"SMTP login to {self.host} refused: {exc.smtp_code}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(f"SMTP server refused every recipient: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            if 400 <= exc.smtp_code < 500:
                raise TransientError(f"SMTP {exc.smtp_code} from {self.host}") from exc
            raise PermanentError(f"SMTP {exc.smtp_code} from {self.host}") from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            self.close()
            raise TransientError(f"SMTP to {self.host}:{self.port} failed: {exc}") from exc
        if refused:
            logger.warning("smtp: some recipients refused for %s", message["Message-ID"])
        logger.info("smtp: sent %s via %s", message["Message-ID"], self.host)
        return str(message["Message-ID"])

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
            self._conn = None


def _for_server(conn: smtplib.SMTP, message: EmailMessage) -> tuple[EmailMessage, list[str]]:
    """``message`` as this server can take it, and the MAIL FROM options: 8-bit content is
    announced with ``BODY=8BITMIME`` where the server offers 8BITMIME, and re-encoded to
    7-bit transfer encodings where it does not (never 8-bit bytes to a 7-bit server)."""
    if not eight_bit(message):
        return message, []
    if not conn.has_extn("8bitmime"):
        logger.debug("smtp: the server offers no 8BITMIME: %s goes 7-bit", message["Message-ID"])
        return seven_bit(message), []
    if _international(message):
        return message, []  # send_message adds SMTPUTF8 and BODY=8BITMIME itself
    return message, ["BODY=8BITMIME"]


def _international(message: EmailMessage) -> bool:
    """Whether an address (not a display name) is non-ASCII: smtplib then asks for SMTPUTF8."""
    headers = [
        h for name in ("Sender", "From", "To", "Cc", "Bcc") for h in message.get_all(name, [])
    ]
    specs = [a.addr_spec for h in headers for a in getattr(h, "addresses", ())]
    return not "".join(specs).isascii()


def eight_bit(message: EmailMessage) -> bool:
    """Whether ``message`` as written on the wire holds bytes above 127."""
    return not message.as_bytes(policy=SMTP).isascii()


def seven_bit(message: EmailMessage) -> EmailMessage:
    """A copy of ``message`` that is written with 7-bit transfer encodings only: the email
    package re-encodes each 8-bit part (base64 for UTF-8 text) when it writes the copy."""
    copied = copy.copy(message)  # the generator copies a part before re-encoding it
    copied.policy = message.policy.clone(cte_type="7bit")
    return copied
