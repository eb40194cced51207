"""Google credentials, per person of an ``accounts:`` entry: where they come from, their
refresh, where they are kept, and :func:`connect` (the installed-app OAuth flow).

``auth: oauth``
    :func:`connect` runs the installed-app flow once per person and keeps the
    credentials, Fernet-encrypted, in the :class:`~connectors.secrets.TokenStore` under
    ``google:<account>:<email>`` (:func:`token_name`); they are refreshed when due and
    saved back.
``auth: service_account``
    ``key_file`` with domain-wide delegation: each person is impersonated (``subject``).
``auth: access_token``
    A bearer token kept fresh by something else, read from the variable ``token_env``.
"""

from __future__ import annotations

import json
import logging
import os
import webbrowser
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import google_auth_httplib2  # type: ignore[import-untyped]
import httplib2  # type: ignore[import-untyped]
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from google.oauth2 import credentials as oauth_credentials
from google.oauth2 import service_account

from connectors.base import AccountSpec
from connectors.secrets import TokenStore, redact
from worker.core.errors import (
    ConfigError,
    ConnectorError,
    PermanentError,
    Problem,
    TransientError,
    UserError,
)
from worker.core.model import UTC

logger = logging.getLogger(__name__)
# google-auth's constructors are untyped: use them through Any.
UserCredentials: Any = oauth_credentials.Credentials
ServiceCredentials: Any = service_account.Credentials

#: Read and write events on the calendars the person can reach (not their settings,
#: ACLs or calendar list): sync, book and defend blocks.
SCOPE_CALENDAR = "https://www.googleapis.com/auth/calendar.events"
#: Send mail as the person, nothing else (no reading, no drafts): the gmail transport.
SCOPE_GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
SCOPES = (SCOPE_CALENDAR, SCOPE_GMAIL_SEND)


def token_name(spec: AccountSpec, email: str) -> str:
    """Where the OAuth credentials of ``email`` live in the token store."""
    return f"google:{spec.name}:{email.strip().lower()}"


def with_token_uri(creds: Any, token_uri: str) -> Any:
    """``creds`` refreshing at ``token_uri`` (the library's copy forgets the expiry)."""
    copy = creds.with_token_uri(token_uri)
    copy.expiry = creds.expiry
    return copy


def auth_error(exc: Exception, what: str, email: str) -> ConnectorError:
    if isinstance(exc, TransportError) or getattr(exc, "retryable", False):
        return TransientError(f"{what}: Google's token endpoint failed ({short(exc)})")
    return PermanentError(
        f"{what}: Google refused to refresh the credentials of {email} ({short(exc)}) — "
        f"connect again: steadyhand connect google --person {email}"
    )


def short(exc: BaseException) -> str:
    """One line about ``exc`` with anything secret-looking redacted."""
    first = exc.args[0] if exc.args else exc
    text = " ".join(redact(str(first)).split())
    return text[:200] or type(exc).__name__


def refresh(creds: Any, http: Any, what: str, email: str) -> None:
    """Refresh ``creds`` over ``http``: a refusal is :func:`auth_error`, a network failure
    transient."""
    try:
        creds.refresh(google_auth_httplib2.Request(http))
    except (GoogleAuthError, OSError, httplib2.HttpLib2Error) as exc:
        if isinstance(exc, RefreshError):
            raise auth_error(exc, what, email) from None
        raise TransientError(f"{what}: cannot reach Google ({short(exc)})") from None


def store_credentials(
    token_store: TokenStore, spec: AccountSpec, email: str, creds: Any, meta: dict[str, Any]
) -> None:
    """Keep ``creds`` of ``email`` (encrypted), with steadyhand's metadata beside them."""
    info = json.loads(creds.to_json())
    info["steadyhand"] = meta
    token_store.save(token_name(spec, email), json.dumps(info).encode())


def credentials_for(
    spec: AccountSpec,
    auth: str,
    token_store: TokenStore | None,
    scopes: tuple[str, ...],
    email: str,
    http: Any,
) -> tuple[Any, dict[str, Any], str | None]:
    """Fresh credentials for ``email`` (refreshed when due), their stored metadata and
    the access token as stored (to know whether to save them back)."""
    what = f"google {spec.name}: credentials of {email}"
    meta: dict[str, Any] = {}
    if auth == "access_token":
        name = spec.token_env or ""
        token = os.environ.get(name, "") if name else ""
        if not token:
            raise PermanentError(
                f"{what}: the variable {name or '(token_env unset)'} holding the access "
                "token is not set — export it, or set token_env: in the account"
            )
        return UserCredentials(token=token), meta, None
    if auth == "service_account":
        key = spec.key_file
        if key is None or not Path(key).is_file():
            raise PermanentError(
                f"{what}: the service account key file {key} does not exist — set "
                "key_file: to the JSON key downloaded from the Google Cloud console"
            )
        try:
            creds: Any = ServiceCredentials.from_service_account_file(
                str(key), scopes=list(scopes), subject=email
            )
        except (ValueError, KeyError) as exc:
            raise PermanentError(
                f"{what}: {key} is not a service account key ({short(exc)})"
            ) from None
    else:
        creds, meta = _stored(spec, token_store, email, what)
    loaded = creds.token
    if not creds.valid:
        refresh(creds, http, what, email)
    return creds, meta, loaded


def _stored(
    spec: AccountSpec, token_store: TokenStore | None, email: str, what: str
) -> tuple[Any, dict[str, Any]]:
    if token_store is None:
        raise PermanentError(f"{what}: no token store to read the OAuth token from")
    data = token_store.load(token_name(spec, email))
    if data is None:
        raise PermanentError(
            f"{what}: not connected yet — run: steadyhand connect google --person {email}"
        )
    try:
        info = json.loads(data)
        creds = UserCredentials.from_authorized_user_info(info)
    except (ValueError, TypeError) as exc:
        raise PermanentError(
            f"{what}: the stored token is damaged ({short(exc)}) — connect again: "
            f"steadyhand connect google --person {email}"
        ) from None
    # from_authorized_user_info always points refreshes at Google's public endpoint;
    # the stored (encrypted, authenticated) token_uri is the one connect() was given.
    if info.get("token_uri"):
        creds = with_token_uri(creds, info["token_uri"])
    meta = info.get("steadyhand") or {}
    return creds, meta if isinstance(meta, dict) else {}


def connect(
    spec: AccountSpec,
    email: str,
    token_store: TokenStore,
    *,
    open_browser: bool = True,
    port: int = 0,
    print_url: Callable[[str], None] = print,
) -> None:
    """Run Google's installed-app OAuth flow for ``email`` and store the credentials.

    Asks for offline access (a refresh token) and :data:`SCOPES` only, with
    ``prompt=consent`` so Google always returns a refresh token. A loopback server on
    ``port`` (0: any free port) receives the redirect. ``print_url`` gets the consent
    address (always: a browser that did not open can be replaced by hand).
    """
    from google_auth_oauthlib.flow import InstalledAppFlow  # type: ignore[import-untyped]
    from oauthlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]

    email = email.strip().lower()
    where = f"accounts[{spec.name}]"
    if spec.client_secrets is None:
        raise ConfigError(
            Problem(
                "auth: oauth needs client_secrets:",
                "download an OAuth client of type 'Desktop app' from the Google Cloud console "
                "(APIs & Services > Credentials) and point client_secrets: at the JSON file",
                path=where,
            )
        )
    secrets = Path(spec.client_secrets)
    if not secrets.is_file():
        raise ConfigError(
            Problem(
                f"client_secrets file {secrets} does not exist",
                "download the 'Desktop app' OAuth client JSON from the Google Cloud console",
                path=where,
            )
        )
    token_store._require()  # no key: fail before the user goes through consent

    class _Flow(InstalledAppFlow):  # type: ignore[misc]
        def authorization_url(self, **kwargs: Any) -> Any:
            url, state = super().authorization_url(**kwargs)
            print_url(url)
            return url, state

    def run(browser: bool) -> Any:
        flow = _Flow.from_client_secrets_file(str(secrets), scopes=list(SCOPES))
        creds = flow.run_local_server(
            host="localhost",
            port=port,
            open_browser=browser,
            authorization_prompt_message=None,
            success_message=(
                "steadyhand is connected to your Google account. You may close this window."
            ),
            access_type="offline",
            prompt="consent",
            login_hint=email,
        )
        return flow, creds

    if open_browser:
        try:
            webbrowser.get()
        except webbrowser.Error:
            logger.info("no browser to open here; the consent address is printed instead")
            open_browser = False
    try:
        flow, creds = run(open_browser)
    except Warning as exc:  # oauthlib: the user did not grant every scope
        granted = getattr(exc, "new_scope", None) or []
        missing = [s for s in SCOPES if s not in set(granted)]
        raise UserError(
            Problem(
                f"Google granted {email} only {', '.join(granted) or 'nothing'}; "
                f"steadyhand also needs {', '.join(missing)}",
                "connect again and leave every permission ticked on the consent screen",
            )
        ) from None
    except OAuth2Error as exc:
        raise UserError(
            Problem(
                f"Google did not grant access for {email} ({exc.error})",
                "connect again and allow access on the consent screen",
            )
        ) from None
    if not creds.refresh_token:
        raise UserError(
            Problem(
                f"Google returned no refresh token for {email}",
                "remove steadyhand at https://myaccount.google.com/permissions and connect again",
            )
        )
    token = dict(getattr(flow.oauth2session, "token", None) or {})
    granted = token.get("scope") or list(SCOPES)
    if isinstance(granted, str):
        granted = granted.split()
    now = datetime.now(UTC).replace(microsecond=0)
    lifetime = token.get("refresh_token_expires_in")
    meta: dict[str, Any] = {
        "email": email,
        "connected_at": now.isoformat(),
        "granted_scopes": sorted(granted),
        "refresh_token_expires_at": (
            (now + timedelta(seconds=int(lifetime))).isoformat() if lifetime else None
        ),
    }
    store_credentials(token_store, spec, email, creds, meta)
    logger.info("google %s: connected %s", spec.name, email)
