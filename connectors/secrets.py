"""The encrypted token store and the log filter that keeps secrets out of logs (DESIGN §7).

Tokens (OAuth credentials, MSAL token caches) are encrypted with Fernet under the key in
``STEADYHAND_SECRET_KEY`` and written as files readable by their owner only (0600, in a
0700 folder), through a temporary file and :func:`os.replace`. With no key the store
refuses to write (it fails closed) and says how to make one:
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from connectors.base import Problem, UserError

KEY_ENV = "STEADYHAND_SECRET_KEY"
MAKE_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


class TokenStore:
    """Named secrets, each an encrypted file in ``folder``."""

    def __init__(self, folder: Path, key: str | bytes | None) -> None:
        self.folder = Path(folder)
        self._fernet = None
        if key:
            try:
                self._fernet = Fernet(key)
            except (ValueError, TypeError):
                raise UserError(
                    Problem(f"{KEY_ENV} is not a valid key", f"make one with: {MAKE_KEY}")
                ) from None

    @classmethod
    def from_env(cls, folder: Path) -> TokenStore:
        return cls(folder, os.environ.get(KEY_ENV))

    def _require(self) -> Fernet:
        if self._fernet is None:
            raise UserError(
                Problem(
                    f"{KEY_ENV} is not set, so steadyhand will not store or read a token",
                    f"make a key with {MAKE_KEY} and export {KEY_ENV}=… (keep it out of the repo)",
                )
            )
        return self._fernet

    def _path(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._@-]", "_", name)
        return self.folder / f"{safe}.token"

    def save(self, name: str, data: bytes) -> Path:
        fernet = self._require()
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        path = self._path(name)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(fernet.encrypt(data))
        os.replace(tmp, path)
        return path

    def load(self, name: str) -> bytes | None:
        path = self._path(name)
        if not path.exists():
            return None
        try:
            return self._require().decrypt(path.read_bytes())
        except InvalidToken:
            raise UserError(
                Problem(
                    f"{path} cannot be decrypted with this {KEY_ENV}",
                    "use the key it was saved with, or connect the account again",
                )
            ) from None

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)


_SECRET = re.compile(
    r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic)?\s*)[^\s\"',}]+"
    r"|((?:access_token|refresh_token|id_token|client_secret|code|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
)


def redact(text: str) -> str:
    """``text`` with the values of Authorization headers and token fields replaced."""
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2) or "") + "[redacted]", text)


class RedactFilter(logging.Filter):
    """A logging filter that redacts secrets from every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
