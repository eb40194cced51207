"""Signing in to Microsoft Graph: msal, the token cache, ``doctor``'s token state, ``connect``.

This is the only module that imports msal.

Auth (``accounts[].auth``)
--------------------------
``device_code`` (default)
    ``steadyhand connect outlook --person EMAIL`` runs :func:`connect`: msal's device-code
    flow against ``https://login.microsoftonline.com/{tenant}``; the msal token cache is
    stored encrypted in the :class:`~connectors.secrets.TokenStore` under
    ``outlook:{account}:{email}``. Later runs call ``acquire_token_silent`` (a refresh when
    the access token is stale) and write the cache back, encrypted, when it changed.
    Paths are ``/me/…``: each person's own token reads their own mailbox.
``client_credentials``
    App-only (admin consent): ``ConfidentialClientApplication`` with the secret from
    ``client_secret_env`` and scope ``https://graph.microsoft.com/.default``; paths are
    ``/users/{email}/…``.
``access_token``
    A token managed elsewhere, read from ``token_env`` on every request; paths are
    ``/users/{email}/…`` (so a token that cannot read that mailbox fails loudly instead of
    reading the wrong one).

Delegated scopes: ``Calendars.ReadWrite``, ``MailboxSettings.Read``, ``Mail.Send`` (msal
adds ``offline_access``, ``openid`` and ``profile`` itself). ``docs/outlook.md`` says why.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import msal  # type: ignore[import-untyped]
import requests

from connectors.base import AccountSpec
from connectors.secrets import TokenStore, guard_library_logs
from worker.core.errors import (
    ConnectorError,
    PermanentError,
    Problem,
    TransientError,
    UserError,
)

logger = logging.getLogger(__name__)


# msal masks tokens in its debug log but not the device code: redact at the source (each
# msal logger, as a logger's filter does not reach its children).
guard_library_logs()

LOGIN = "https://login.microsoftonline.com"
GRAPH_RESOURCE = "https://graph.microsoft.com/"
#: Delegated permissions, least that do the job (msal adds offline_access itself).
DELEGATED = ("Calendars.ReadWrite", "MailboxSettings.Read", "Mail.Send")
SCOPES = [GRAPH_RESOURCE + name for name in DELEGATED]
APP_SCOPES = [GRAPH_RESOURCE + ".default"]
#: Application permissions an app-only account needs.
APP_ROLES = ("Calendars.ReadWrite", "Mail.Send")
AUTH_MODES = ("device_code", "client_credentials", "access_token")


def token_name(spec: AccountSpec, email: str) -> str:
    """The token store entry holding ``email``'s msal cache for account ``spec``."""
    return f"outlook:{spec.name}:{email.strip().lower()}"


def _authority(spec: AccountSpec, override: str | None) -> str:
    return (override or f"{LOGIN}/{spec.tenant or 'organizations'}").rstrip("/")


def _one_line(result: Mapping[str, Any] | None) -> str:
    if not result:
        return "no token in the cache"
    error = str(result.get("error") or "error")
    description = str(result.get("error_description") or "").strip().splitlines()
    first = description[0] if description else ""
    first = re.sub(r"\s*Trace ID:.*$", "", first)
    return f"{error}: {first[:180]}" if first else error


def _classify(result: Mapping[str, Any] | None) -> str:
    """A token failure as a ``doctor`` status (or ``transient``)."""
    if not result:  # no refresh token for this app in the cache
        return "missing"
    error = str(result.get("error") or "")
    codes = {int(c) for c in result.get("error_codes") or () if str(c).isdecimal()}
    text = str(result.get("error_description") or "")
    if result.get("suberror") == "consent_required" or codes & {65001, 65004}:
        return "missing_scopes"
    if codes & {50173, 50133, 7000215}:  # a revoked grant, a changed password, a bad secret
        return "revoked"
    if codes & {700082, 7000222} or (not codes and "expired" in text.lower()):
        return "expired"
    if error in ("invalid_grant", "interaction_required"):
        return "revoked"
    if error in ("temporarily_unavailable", "server_error") or "AADSTS90033" in text:
        return "transient"
    return "error"


def _claims(token: str) -> dict[str, Any]:
    """The unverified claims of a JWT access token (only to say which permissions it
    carries); {} for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        data = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _lacking(token: str, granted_scope: str | None, app: bool) -> list[str]:
    claims = _claims(token)
    if app:
        have = {str(r).casefold() for r in claims.get("roles") or ()}
        if not claims:
            return []
        return [r for r in APP_ROLES if r.casefold() not in have]
    text = str(claims.get("scp") or granted_scope or "")
    if not text:
        return []
    have = {s.rsplit("/", 1)[-1].casefold() for s in text.split()}
    return [s for s in DELEGATED if s.casefold() not in have]


class Auth:
    """Access tokens for Graph, per auth mode; msal stays in here."""

    def __init__(
        self,
        spec: AccountSpec,
        token_store: TokenStore | None,
        http_client: Any,
        authority: str | None,
    ) -> None:
        mode = spec.auth or "device_code"
        if mode not in AUTH_MODES:
            raise UserError(
                Problem(
                    f"auth {mode!r} is not an Outlook auth mode",
                    f"use one of {', '.join(AUTH_MODES)}",
                    path=f"accounts.{spec.name}.auth",
                )
            )
        self.spec = spec
        self.mode = mode
        self.store = token_store
        self.http_client = http_client
        self.authority = _authority(spec, authority)
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._apps: dict[str, tuple[Any, Any]] = {}  # identity -> (app, cache)

    @property
    def delegated(self) -> bool:
        return self.mode == "device_code"

    def identity(self, mailbox: str) -> str:
        """Whose token signs a request for ``mailbox`` ("" for the one app-wide token)."""
        return mailbox.strip().lower() if self.delegated else ""

    def base(self, mailbox: str) -> str:
        return "/me" if self.delegated else f"/users/{quote(mailbox.strip().lower(), safe='@')}"

    def fix(self, who: str) -> str:
        if self.mode == "device_code":
            return f"run `steadyhand connect outlook --person {who}` again"
        if self.mode == "client_credentials":
            return (
                f"check the client secret in ${self.spec.client_secret_env} and the app's "
                "admin consent in Entra ID"
            )
        return f"put a fresh token in ${self.spec.token_env}"

    def _lock_for(self, identity: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(identity, threading.Lock())

    def prefix(self) -> str:
        return f"outlook {self.spec.name}"

    # -- the token ------------------------------------------------------------------
    def token(self, identity: str, *, force: bool = False) -> str:
        if self.mode == "access_token":
            return self._env_token()
        with self._lock_for(identity):
            if self.mode == "client_credentials":
                result = self._app_token(force)
            else:
                result = self._user_token(identity, force)
        if result and result.get("access_token"):
            return str(result["access_token"])
        status = _classify(result)
        message = f"{self.prefix()}: no access token for {identity or 'the app'} ({status}: "
        message += f"{_one_line(result)}) — {self.fix(identity)}"
        if status == "transient":
            raise TransientError(message)
        raise PermanentError(message)

    def _env_token(self) -> str:
        name = self.spec.token_env
        value = os.environ.get(name or "")
        if not name or not value:
            raise PermanentError(
                f"{self.prefix()}: auth access_token reads the token from "
                f"${name or 'token_env'}, which is not set — set token_env and export it"
            )
        return value.strip()

    def _msal(self, build: Callable[[], Any]) -> Any:
        try:
            return build()
        except ValueError as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise PermanentError(
                f"{self.prefix()}: the sign-in authority {self.authority} cannot be used "
                f"({first}) — check tenant: and client_id: in steadyhand.yaml"
            ) from None
        except (requests.RequestException, msal.exceptions.MsalError, RuntimeError) as exc:
            raise TransientError(
                f"{self.prefix()}: cannot reach the sign-in service {self.authority} "
                f"({type(exc).__name__})"
            ) from None

    def _client_id(self) -> str:
        if not self.spec.client_id:
            raise UserError(
                Problem(
                    "an Outlook account needs the application (client) id",
                    "add client_id: from the app registration in Entra ID",
                    path=f"accounts.{self.spec.name}.client_id",
                )
            )
        return self.spec.client_id

    def _app_token(self, force: bool) -> Mapping[str, Any] | None:
        env = self.spec.client_secret_env
        secret = os.environ.get(env or "")
        if not env or not secret:
            raise PermanentError(
                f"{self.prefix()}: auth client_credentials needs the client secret in "
                f"${env or 'client_secret_env'}, which is not set — export it"
            )
        cached = self._apps.get("")
        if cached is None or force:
            app = self._msal(
                lambda: msal.ConfidentialClientApplication(
                    self._client_id(),
                    client_credential=secret,
                    authority=self.authority,
                    http_client=self.http_client,
                    instance_discovery=False,
                )
            )
            self._apps[""] = cached = (app, None)
        result = self._msal(lambda: cached[0].acquire_token_for_client(scopes=APP_SCOPES))
        if not result or "access_token" not in result:
            self._apps.pop("", None)
        return result  # type: ignore[no-any-return]

    def _load_app(self, identity: str) -> tuple[Any, Any]:
        found = self._apps.get(identity)
        if found is not None:
            return found
        if self.store is None:
            raise PermanentError(
                f"{self.prefix()}: no token store to read {identity}'s sign-in from — "
                "set STEADYHAND_SECRET_KEY and connect the account"
            )
        data = self.store.load(token_name(self.spec, identity))
        if data is None:
            raise PermanentError(
                f"{self.prefix()}: {identity} has not connected this account — run "
                f"`steadyhand connect outlook --person {identity}`"
            )
        cache = msal.SerializableTokenCache()
        cache.deserialize(data.decode("utf-8"))
        app = self._msal(lambda: _public_app(self.spec, cache, self.http_client, self.authority))
        self._apps[identity] = (app, cache)
        return app, cache

    def _user_token(self, identity: str, force: bool) -> Mapping[str, Any] | None:
        app, cache = self._load_app(identity)
        accounts = app.get_accounts(username=identity) or app.get_accounts()
        if not accounts:
            self._apps.pop(identity, None)
            return None
        result = self._msal(
            lambda: app.acquire_token_silent_with_error(
                SCOPES, account=accounts[0], force_refresh=force
            )
        )
        self._save(identity, cache)
        if not result or "access_token" not in result:
            self._apps.pop(identity, None)  # read the store again next time (a re-connect)
        return result  # type: ignore[no-any-return]

    def _save(self, identity: str, cache: Any) -> None:
        if cache.has_state_changed and self.store is not None:
            self.store.save(token_name(self.spec, identity), cache.serialize().encode("utf-8"))
            cache.has_state_changed = False

    # -- doctor -----------------------------------------------------------------------
    def health(self, email: str) -> tuple[str, str]:
        identity = email.strip().lower()
        try:
            if self.mode == "access_token":
                if not os.environ.get(self.spec.token_env or ""):
                    return "missing", f"${self.spec.token_env or 'token_env'} is not set"
                token = self._env_token()
                expires = _claims(token).get("exp")
                if isinstance(expires, int | float) and expires < time.time():
                    return "expired", f"the token in ${self.spec.token_env} has expired"
                return self._scopes_ok(token, None, app=False, source="token_env")
            if self.mode == "client_credentials":
                if not os.environ.get(self.spec.client_secret_env or ""):
                    return "missing", f"${self.spec.client_secret_env or 'secret'} is not set"
                with self._lock_for(""):
                    result = self._app_token(force=True)
                return self._judge(result, app=True, who="the app")
            if self.store is None or self.store.load(token_name(self.spec, identity)) is None:
                return (
                    "missing",
                    f"not connected — run `steadyhand connect outlook --person {email}`",
                )
            with self._lock_for(identity):
                app, _ = self._load_app(identity)
                if not (app.get_accounts(username=identity) or app.get_accounts()):
                    return "missing", f"no sign-in in the cache: connect {email} again"
                result = self._user_token(identity, force=True)
            return self._judge(result, app=False, who=email)
        except UserError as exc:
            return "error", str(exc).splitlines()[0]
        except ConnectorError as exc:
            return "error", str(exc).splitlines()[0]

    def _judge(self, result: Mapping[str, Any] | None, *, app: bool, who: str) -> tuple[str, str]:
        if result and result.get("access_token"):
            return self._scopes_ok(str(result["access_token"]), result.get("scope"), app, who)
        status = _classify(result)
        status = "error" if status == "transient" else status
        return status, f"{_one_line(result)} — {self.fix(who)}"

    def _scopes_ok(self, token: str, scope: Any, app: bool, source: str) -> tuple[str, str]:
        lacking = _lacking(token, str(scope) if scope else None, app)
        if lacking:
            return "missing_scopes", f"{source}'s token lacks {', '.join(lacking)} — " + (
                "grant them (admin consent)" if app else self.fix(source)
            )
        return "ok", "token refreshed" if self.mode != "access_token" else "token present"


def _public_app(spec: AccountSpec, cache: Any, http_client: Any, authority: str) -> Any:
    if not spec.client_id:
        raise UserError(
            Problem(
                "an Outlook account needs the application (client) id",
                "add client_id: from the app registration in Entra ID",
                path=f"accounts.{spec.name}.client_id",
            )
        )
    return msal.PublicClientApplication(
        spec.client_id,
        authority=authority,
        token_cache=cache,
        http_client=http_client,
        # The authority is fixed by the config; skip the lookup of its aliases.
        instance_discovery=False,
    )


# -- connect ------------------------------------------------------------------------------
def connect(
    spec: AccountSpec,
    email: str,
    token_store: TokenStore,
    *,
    show: Callable[[str], None] = print,
    msal_http_client: Any = None,
    authority: str | None = None,
) -> None:
    """``steadyhand connect outlook --person EMAIL``: the device-code sign-in. Shows the
    code and the URL, waits for the user, and stores msal's token cache encrypted."""
    mode = spec.auth or "device_code"
    if mode != "device_code":
        raise UserError(
            Problem(
                f"account {spec.name} uses auth: {mode}, which needs no sign-in here",
                "`steadyhand connect outlook` is for auth: device_code",
                path=f"accounts.{spec.name}.auth",
            )
        )
    require = getattr(token_store, "_require", None)
    if callable(require):
        require()  # fail closed before the user signs in: no key, nowhere to keep the token
    where = _authority(spec, authority)
    cache = msal.SerializableTokenCache()
    app = Auth(spec, token_store, msal_http_client, authority)._msal(
        lambda: _public_app(spec, cache, msal_http_client, where)
    )
    flow = app.initiate_device_flow(scopes=SCOPES)
    if "user_code" not in flow:
        raise PermanentError(f"outlook {spec.name}: the sign-in could not start: {_one_line(flow)}")
    show(
        str(
            flow.get("message")
            or f"Open {flow.get('verification_uri')} and enter the code {flow['user_code']}"
        )
    )
    result = app.acquire_token_by_device_flow(flow)
    if not result or "access_token" not in result:
        raise PermanentError(f"outlook {spec.name}: the sign-in failed: {_one_line(result)}")
    who = str((result.get("id_token_claims") or {}).get("preferred_username") or "")
    if who and who.lower() != email.strip().lower():
        show(f"note: signed in as {who}; the sign-in is stored for {email}")
    token_store.save(token_name(spec, email), cache.serialize().encode("utf-8"))
    logger.info("outlook %s: %s connected", spec.name, email)
