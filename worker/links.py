"""The links in steadyhand's emails: signed tokens, one purpose each.

Glossary
--------
link
    ``{web.base_url}/{purpose}/{token}``: a page of ``steadyhand serve``. The link is
    the credential (no login), so a token says whom it is for and what it may do.
purpose
    What a token opens: ``answer`` (a reflection's score and notes, 14 days),
    ``journal`` (the private "Your last 30 days" page, 14 days), ``unsubscribe``
    (one program, or ``*`` for all; 180 days) and ``preferences`` (opt-outs, pause,
    what steadyhand holds; 180 days). Each purpose signs with its own salt, so a token
    made for one purpose is refused by every other.
claim
    What a valid token says: the recipient's address, the program and the period
    (an ISO date for a day, ``2026-W45`` for a week, ``""`` where none applies).
now
    Tokens are stamped with the caller's clock and checked against it, so a demo or a
    test at ``--now`` makes links that the web service (at the same ``--now``) accepts.

A tampered, expired, foreign (another key or purpose) or malformed token raises
:class:`BadLink`, whose ``reason`` is ``expired`` or ``invalid``; the page shows it in
words and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlencode

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner


class Purpose(StrEnum):
    ANSWER = "answer"
    JOURNAL = "journal"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


#: How long each purpose's links work, from the moment the email was made.
MAX_AGE: dict[Purpose, timedelta] = {
    Purpose.ANSWER: timedelta(days=14),
    Purpose.JOURNAL: timedelta(days=14),
    Purpose.UNSUBSCRIBE: timedelta(days=180),
    Purpose.PREFERENCES: timedelta(days=180),
}

#: How far ahead of the checking clock a token's stamp may be: ``run`` and ``serve`` may run
#: on machines whose clocks differ a little, and a fresh link must not read as expired.
CLOCK_SKEW = timedelta(minutes=5)

#: The salt of CSRF tokens (a form's hidden field), distinct from every link's.
CSRF_SALT = "csrf"
#: How long a page's form may stay open before its POST is refused (and shown again).
CSRF_MAX_AGE = timedelta(hours=24)


class BadLink(Exception):
    """A token that cannot be used; ``reason`` is ``expired`` or ``invalid``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claim:
    purpose: Purpose
    email: str
    program: str
    period: str


class _ClockSigner(TimestampSigner):
    """itsdangerous' timed signer on our clock (``now`` passed in), not ``time.time``."""

    def __init__(self, *args: Any, clock_at: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock_at = clock_at

    def get_timestamp(self) -> int:
        return int(self._clock_at)


class Links:
    """Makes and checks the tokens and URLs of one key. ``base_url`` is ``web.base_url``
    (None: no web links); ``unsubscribe_url`` is ``mail.unsubscribe_url``, an admin's own
    opt-out page, which takes the place of ours in List-Unsubscribe when set."""

    def __init__(
        self, key: str, base_url: str | None = None, unsubscribe_url: str | None = None
    ) -> None:
        if not key:
            raise ValueError("a Links needs a secret key")
        self._key = key
        self.base_url = base_url.rstrip("/") if base_url else None
        self.unsubscribe_url = unsubscribe_url

    def _serializer(self, salt: str, now: datetime) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self._key,
            salt=salt,
            signer=_ClockSigner,
            signer_kwargs={"clock_at": now.timestamp()},
        )

    def serializer(self, salt: str, now: datetime) -> URLSafeTimedSerializer:
        """A serializer of this key on ``now`` for another signed value of the web service
        (the dashboard's sign-in links and session cookie), under a salt of its own: never
        a purpose's or the CSRF fields', so no value passes for another."""
        if salt in {p.value for p in Purpose} | {CSRF_SALT}:
            raise ValueError(f"the salt {salt!r} belongs to a link purpose or CSRF")
        return self._serializer(salt, now)

    # -- tokens -------------------------------------------------------------------
    def token(self, purpose: Purpose, email: str, program: str, period: str, now: datetime) -> str:
        data = {"e": email.lower(), "p": program, "d": period}
        return self._serializer(purpose.value, now).dumps(data)

    def verify(self, purpose: Purpose, token: str, now: datetime) -> Claim:
        """The claim of ``token`` made for ``purpose``, checked against ``now``."""
        try:  # checked CLOCK_SKEW ahead, with as much more age: the expiry stays exact
            data: Any = self._serializer(purpose.value, now + CLOCK_SKEW).loads(
                token, max_age=int((MAX_AGE[purpose] + CLOCK_SKEW).total_seconds())
            )
        except SignatureExpired:
            raise BadLink("expired") from None
        except (BadData, UnicodeError, ValueError):
            raise BadLink("invalid") from None
        if not (
            isinstance(data, dict)
            and isinstance(data.get("e"), str)
            and isinstance(data.get("p"), str)
            and isinstance(data.get("d", ""), str)
        ):
            raise BadLink("invalid")
        return Claim(purpose, data["e"], data["p"], data.get("d", ""))

    # -- URLs ---------------------------------------------------------------------
    def url(
        self,
        purpose: Purpose,
        email: str,
        program: str,
        period: str,
        now: datetime,
        **query: str | int,
    ) -> str | None:
        """``{base_url}/{purpose}/{token}[?query]``; None without ``web.base_url``."""
        if not self.base_url:
            return None
        token = self.token(purpose, email, program, period, now)
        tail = f"?{urlencode(query)}" if query else ""
        return f"{self.base_url}/{purpose.value}/{quote(token, safe='')}{tail}"

    def unsubscribe_link(self, email: str, program: str, period: str, now: datetime) -> str | None:
        """The one-click (RFC 8058) opt-out URL of an email from ``program``: the admin's
        ``mail.unsubscribe_url`` with ``?token=`` when set, else our own page; None when
        neither is set. A bundle's link opts out of every program (``*``)."""
        program = unsubscribe_program(program)
        if self.unsubscribe_url:
            token = self.token(Purpose.UNSUBSCRIBE, email, program, period, now)
            sep = "&" if "?" in self.unsubscribe_url else "?"
            return f"{self.unsubscribe_url}{sep}{urlencode({'token': token})}"
        return self.url(Purpose.UNSUBSCRIBE, email, program, period, now)

    # -- CSRF ---------------------------------------------------------------------
    def csrf(self, token: str, now: datetime) -> str:
        """The hidden form field of the page a link ``token`` opened: signed, tied to
        that token, valid for :data:`CSRF_MAX_AGE`."""
        return self._serializer(CSRF_SALT, now).dumps(_digest(token))

    def check_csrf(self, field: str, token: str, now: datetime) -> None:
        """Raise :class:`BadLink` unless ``field`` is :meth:`csrf` of ``token``, in time."""
        try:
            bound = self._serializer(CSRF_SALT, now + CLOCK_SKEW).loads(
                field, max_age=int((CSRF_MAX_AGE + CLOCK_SKEW).total_seconds())
            )
        except SignatureExpired:
            raise BadLink("expired") from None
        except (BadData, UnicodeError, ValueError):
            raise BadLink("invalid") from None
        if not isinstance(bound, str) or not hmac.compare_digest(bound, _digest(token)):
            raise BadLink("invalid")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def unsubscribe_program(program: str) -> str:
    """What a one-click link from a ``program`` email opts out of: that program, except a
    bundle (several programs in one email), whose link opts out of every email (``*``)."""
    return "*" if program == "bundle" else program
