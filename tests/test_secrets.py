"""Tokens encrypted at rest, failing closed without a key; secrets redacted from logs."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connectors.retry import Backoff, retrying
from connectors.secrets import RedactFilter, TokenStore, redact
from worker.core.errors import TransientError, UserError


def test_a_token_is_encrypted_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens", Fernet.generate_key())
    path = store.save("google:ana@example.com", b'{"refresh_token": "1//secret"}')
    assert b"secret" not in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tokens").stat().st_mode) == 0o700
    assert store.load("google:ana@example.com") == b'{"refresh_token": "1//secret"}'


def test_without_a_key_nothing_is_stored_and_the_error_says_how_to_make_one(tmp_path: Path) -> None:
    store = TokenStore(tmp_path, None)
    with pytest.raises(UserError, match="STEADYHAND_SECRET_KEY is not set") as info:
        store.save("x", b"token")
    assert "Fernet.generate_key()" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_token_saved_under_another_key_is_a_clear_error(tmp_path: Path) -> None:
    TokenStore(tmp_path, Fernet.generate_key()).save("x", b"token")
    with pytest.raises(UserError, match="cannot be decrypted"):
        TokenStore(tmp_path, Fernet.generate_key()).load("x")


def test_logs_never_show_tokens(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    logger.addFilter(RedactFilter())
    with caplog.at_level(logging.INFO, logger="test.redact"):
        logger.info("POST %s with Authorization: Bearer %s", "/token", "ya29.a0AfH6")
        logger.info("answer %s", {"access_token": "ya29.zzz", "refresh_token": "1//0g"})
    assert "ya29" not in caplog.text and "1//0g" not in caplog.text
    assert caplog.text.count("[redacted]") == 3
    assert redact("client_secret=abc&code=4/xyz") == "client_secret=[redacted]&code=[redacted]"


def test_backoff_retries_transient_errors_honouring_retry_after() -> None:
    calls: list[int] = []
    waits: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("429", retry_after=7 if len(calls) == 1 else None)
        return "ok"

    assert (
        retrying(flaky, "test", Backoff(attempts=5, base=1, cap=4), waits.append, lambda: 1.0)
        == "ok"
    )
    assert waits == [7, 2.0]


def test_backoff_gives_up_after_its_attempts_and_never_retries_other_errors() -> None:
    waits: list[float] = []
    with pytest.raises(TransientError):
        retrying(
            lambda: (_ for _ in ()).throw(TransientError("503")),
            "t",
            Backoff(attempts=3),
            waits.append,
            lambda: 0.5,
        )
    assert len(waits) == 2
    with pytest.raises(ValueError):
        retrying(lambda: (_ for _ in ()).throw(ValueError("400")), "t", Backoff(), waits.append)
    assert len(waits) == 2
