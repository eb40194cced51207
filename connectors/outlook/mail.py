"""The Outlook mail transport: Graph ``sendMail`` as MIME, so our headers stay as built."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from typing import Any

import requests

from connectors.base import AccountSpec
from connectors.outlook.auth import Auth
from connectors.outlook.graph import DEFAULT_BACKOFF, Graph
from connectors.retry import Backoff
from connectors.secrets import TokenStore

logger = logging.getLogger(__name__)


class OutlookTransport:
    """Sends through Graph ``sendMail`` as MIME (base64), so our headers stay as built."""

    name = "outlook"

    def __init__(
        self,
        spec: AccountSpec,
        sender: str,
        *,
        token_store: TokenStore | None = None,
        session: requests.Session | None = None,
        msal_http_client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff = DEFAULT_BACKOFF,
        authority: str | None = None,
    ) -> None:
        self.spec = spec
        self.sender = (parseaddr(sender)[1] or sender).strip().lower()
        self.auth = Auth(spec, token_store, msal_http_client, authority)
        self.graph = Graph(spec, self.auth, session, sleep, backoff, 4)

    def send(self, message: EmailMessage) -> str:
        message_id = message.get("Message-ID")
        if not message_id:
            domain = self.sender.rpartition("@")[2] or None
            message_id = make_msgid(domain=domain)
            message["Message-ID"] = message_id
        mime = base64.b64encode(message.as_bytes(policy=email_policy.SMTP))
        self.graph.call(
            "POST",
            f"{self.auth.base(self.sender)}/sendMail",
            mailbox=self.sender,
            what=f"sendMail as {self.sender}",
            data=mime,
            headers={"Content-Type": "text/plain"},
            replay_safe=False,  # a lost answer may mean it was sent: the outbox decides
        )
        logger.info("outlook sent %s as %s", message_id, self.sender)
        return str(message_id)
