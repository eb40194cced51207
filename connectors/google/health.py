"""The health of one person's Google credentials, for ``steadyhand doctor``: each kind of
``auth:`` tried for real (a refresh, or one ``events.list`` with a bare token), put as a
status and one line saying what to do."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import google_auth_httplib2  # type: ignore[import-untyped]
from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from connectors.google.api import Api, from_http_error
from connectors.google.auth import (
    ServiceCredentials,
    UserCredentials,
    short,
    store_credentials,
    token_name,
    with_token_uri,
)
from worker.core.model import UTC


def token_health(api: Api, email: str, scopes: tuple[str, ...]) -> tuple[str, str]:
    """``(status, what to do)`` for ``email``'s credentials of ``api``'s account, on a
    connection of its own (closed after)."""
    http = api._new_http()
    try:
        return _check(api, email, scopes, http)
    finally:
        http.close()


def _check(api: Api, email: str, scopes: tuple[str, ...], http: Any) -> tuple[str, str]:
    connect_again = f"run: steadyhand connect google --person {email}"
    if api.auth == "access_token":
        name = api.spec.token_env or ""
        if not name or not os.environ.get(name):
            return "missing", f"the variable {name or '(token_env)'} holding the token is not set"
        session = api._session(email)
        try:
            session.service.events().list(calendarId="primary", maxResults=1).execute()
        except RefreshError:  # a 401, and a bare token cannot be refreshed
            return "expired", f"Google rejects the token in {name}: renew it where it is made"
        except HttpError as exc:
            answer = from_http_error(exc)
            if answer.status == 401:
                return "expired", f"Google rejects the token in {name}: renew it where it is made"
            if answer.status == 403 and answer.reason in ("insufficientPermissions", "forbidden"):
                return "missing_scopes", f"the token in {name} lacks {', '.join(scopes)}"
            return "error", f"Google answered HTTP {answer.status} {answer.reason}"
        return "ok", f"the token in {name} works"
    if api.auth == "service_account":
        key = api.spec.key_file
        if key is None or not Path(key).is_file():
            return "missing", f"the service account key file {key} does not exist"
        creds: Any = ServiceCredentials.from_service_account_file(
            str(key), scopes=list(scopes), subject=email
        )
        try:
            creds.refresh(google_auth_httplib2.Request(http))
        except RefreshError as exc:
            text = short(exc)
            if "unauthorized_client" in text:
                return "missing_scopes", (
                    f"domain-wide delegation does not grant {', '.join(scopes)} to client "
                    f"{creds.service_account_email}: add them in the Admin console"
                )
            return "error", text
        return "ok", f"impersonating {email} as {creds.service_account_email}"
    # oauth
    if api.token_store is None:
        return "missing", "no token store"
    data = api.token_store.load(token_name(api.spec, email))
    if data is None:
        return "missing", f"not connected: {connect_again}"
    info = json.loads(data)
    meta = info.get("steadyhand") or {}
    creds = UserCredentials.from_authorized_user_info(info)
    if info.get("token_uri"):
        creds = with_token_uri(creds, info["token_uri"])
    expires = meta.get("refresh_token_expires_at")
    limit = datetime.fromisoformat(expires) if expires else None
    if not creds.refresh_token:
        if creds.expired:
            return (
                "expired",
                f"the access token expired and there is no refresh token: {connect_again}",
            )
    else:
        try:
            creds.refresh(google_auth_httplib2.Request(http))
        except RefreshError as exc:
            if limit is not None and datetime.now(UTC) >= limit - timedelta(hours=1):
                return "testing_app_7_day_expiry", (
                    f"the refresh token expired on {limit:%Y-%m-%d}: the OAuth app is in "
                    f"Testing, where Google ends consent after 7 days — publish it, then "
                    f"{connect_again}"
                )
            if "invalid_grant" in short(exc):
                return "revoked", f"Google says the token was expired or revoked: {connect_again}"
            return "error", short(exc)
        granted = creds.granted_scopes or meta.get("granted_scopes")
        store_credentials(api.token_store, api.spec, email, creds, meta)
        if granted:
            missing = [s for s in scopes if s not in set(granted)]
            if missing:
                return "missing_scopes", (
                    f"Google did not grant {', '.join(missing)}: {connect_again} and allow "
                    "every permission on the consent screen"
                )
    if limit is not None:
        return "testing_app_7_day_expiry", (
            f"works, but the refresh token ends on {limit:%Y-%m-%d %H:%M} UTC: the OAuth app "
            "is in Testing (7-day consent) — publish it to stop weekly reconnects"
        )
    return "ok", "refreshed just now" if creds.refresh_token else "token valid"
