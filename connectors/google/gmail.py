"""Gmail as a mail transport: :class:`GmailTransport` sends steadyhand's emails through
``users.messages.send`` with the sender's own credentials (scope ``gmail.send`` only)."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

from connectors.base import AccountSpec
from connectors.google.api import DEFAULT_BACKOFF, Api
from connectors.google.auth import SCOPE_GMAIL_SEND
from connectors.retry import Backoff
from connectors.secrets import TokenStore

logger = logging.getLogger(__name__)


class GmailTransport(Api):
    """Sends steadyhand's emails through Gmail's ``users.messages.send`` as ``sender``
    (the address in ``mail.from``), with that person's credentials of the account."""

    name = "gmail"
    api = ("gmail", "v1", "")
    scopes = (SCOPE_GMAIL_SEND,)

    def __init__(
        self,
        spec: AccountSpec,
        sender: str,
        *,
        token_store: TokenStore | None = None,
        http: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        super().__init__(spec, token_store, http, sleep, backoff)
        self.sender = (parseaddr(sender)[1] or sender).strip().lower()

    def send(self, message: EmailMessage) -> str:
        session = self._session(self.sender)
        raw = base64.urlsafe_b64encode(message.as_bytes()).decode("ascii")
        what = f"gmail send as {self.sender}"
        service = session.service
        result = self._run(
            lambda: service.users().messages().send(userId="me", body={"raw": raw}),
            what,
            session,
        )
        message_id = str(result["id"])
        logger.info("gmail: sent message %s as %s", message_id, self.sender)
        return message_id
