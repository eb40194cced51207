"""The encrypted token store and the log filter that keeps secrets out of logs (docs/privacy.md).

Tokens (OAuth credentials, MSAL token caches) are encrypted with Fernet under the key in
``STEADYHAND_SECRET_KEY`` and written as files readable by their owner only (0600, in a
0700 folder), through a temporary file and :func:`os.replace`. With no key the store
refuses to write (it fails closed) and says how to make one:
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from worker.core.errors import Problem, UserError
from worker.core.model import redact_location

KEY_ENV = "STEADYHAND_SECRET_KEY"
logger = logging.getLogger(__name__)
MAKE_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


# -- private files ------------------------------------------------------------------------
def private_dir(folder: Path, *, ours: bool = False) -> Path:
    """``folder``, made when missing with every folder it makes 0700 (whatever the umask).
    An existing folder is tightened to 0700 when it is steadyhand's own (``ours``: the
    tokens, the outbox, or a folder named ``var`` as steadyhand lays it out); any other
    folder others can read is left as it is, with a warning saying how to close it."""
    folder = Path(folder)
    missing: list[Path] = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for made in reversed(missing):
        try:
            os.mkdir(made, 0o700)
        except FileExistsError:  # another process made it meanwhile
            continue
        os.chmod(made, 0o700)
    if missing:
        return folder
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o077:
        if ours or _steadyhands_var(folder):
            os.chmod(folder, 0o700)
        elif str(folder) not in _WARNED:
            _WARNED.add(str(folder))
            logger.warning(
                "%s is open to other users (mode %o); it holds steadyhand's personal data: "
                "chmod 700 %s",
                folder,
                mode,
                folder,
            )
    return folder


_WARNED: set[str] = set()


def _steadyhands_var(folder: Path) -> bool:
    """A ``var`` folder of the current user that is not the system's ``/var``."""
    resolved = folder.resolve()
    try:
        owned = resolved.stat().st_uid == os.getuid()
    except (AttributeError, OSError):
        return False
    return resolved.name == "var" and resolved.parent != Path(resolved.anchor) and owned


def private_file(path: Path) -> Path:
    """``path`` made (empty) when missing, and set to 0600 either way, its folder made
    with :func:`private_dir`: for files others open (SQLite makes its ``-wal`` and
    ``-shm`` files with the mode of the database file)."""
    path = Path(path)
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600))
    os.chmod(path, 0o600)  # also an older file, made before steadyhand closed it
    for companion in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{companion}", 0o600)
    return path


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
        """Encrypt ``data`` into the token file ``name``: written to a temporary file of
        its own (so two processes saving at once never share one) and renamed over the
        old one, so a reader sees the old token or the new one, never half of either."""
        fernet = self._require()
        private_dir(self.folder, ours=True)
        path = self._path(name)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(fernet.encrypt(data))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    def load(self, name: str) -> bytes | None:
        path = self._path(name)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return self._require().decrypt(blob)
        except InvalidToken:
            raise UserError(
                Problem(
                    f"{path} cannot be decrypted with this {KEY_ENV}",
                    "use the key it was saved with, or connect the account again",
                )
            ) from None

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)


# -- log redaction ------------------------------------------------------------------------
#: Fields whose value is a credential, in any of the shapes libraries log them: a form body
#: or query (``code=…&``), JSON (``"code": "…"``), a Python repr (``'code': '…'``,
#: ``('code', '…')``), a header-like line (``password: …``) or URL-encoded (``code%3D…``).
_FIELDS = (
    r"code_verifier|client_secret|client_assertion|refresh_?token|access_?token|id_?token"
    r"|device_code|assertion|password|passwd|secret|token|code|api_?key"
)
_VALUE = r"(?P<v>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s\"'&,;}\])]+)"
_FIELD = re.compile(
    rf"(?i)(?P<k>(?:(?<![A-Za-z0-9_.-])|(?<=%26)|(?<=%3F))(?:{_FIELDS}))"
    rf"(?P<sep>[\"']?\s*(?:[:=]|%3D)\s*|[\"']\s*,\s*){_VALUE}"
)
_HEADER = re.compile(
    r"(?i)(?P<k>(?<![A-Za-z0-9_-])(?:proxy-)?authorization|(?<![A-Za-z0-9_-])(?:set-)?cookie)"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<scheme>(?:bearer|basic|digest|negotiate|ntlm|token|mac)\s+)?"
    r"(?P<v>[^\r\n\"']+)"
)
#: A URL (its userinfo, query values and secret-looking path segments go) and an HTTP
#: request line as urllib3 logs it (``"GET /calendar/ical/…/private-…/basic.ics HTTP/1.1"``).
_URL_IN_TEXT = re.compile(r"(?i)\b(?:https?|webcals?)://[^\s\"'<>]+")
_REQUEST_LINE = re.compile(
    r"\b(?P<verb>GET|PUT|POST|HEAD|PATCH|DELETE|OPTIONS) (?P<path>/[^\s\"']*)"
)


def _field(match: re.Match[str]) -> str:
    value = match["v"]
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match['k']}{match['sep']}{quote}[redacted]{quote}"


def _header(match: re.Match[str]) -> str:
    return f"{match['k']}{match['sep']}{match['scheme'] or ''}[redacted]"


def redact(text: str) -> str:
    """``text`` with credentials replaced by ``[redacted]`` (Authorization and Cookie
    headers, token, code, verifier, secret and password fields) and every URL shown as
    :func:`worker.core.model.redact_location` shows a feed (no userinfo, no query values, no
    secret path segments)."""
    if not text:
        return text
    text = _HEADER.sub(_header, text)
    text = _FIELD.sub(_field, text)
    text = _URL_IN_TEXT.sub(_url, text)
    return _REQUEST_LINE.sub(_request_line, text)


def _url(match: re.Match[str]) -> str:
    """A URL redacted; a calendar key's ``#<hash>`` (which tells feeds apart) is kept."""
    url = match[0].rstrip(".,;:)]")
    trail = match[0][len(url) :]
    address, sep, fragment = url.partition("#")
    kept = f"#{fragment}" if sep and re.fullmatch(r"[0-9a-f]{8,16}", fragment) else ""
    return redact_location(address) + kept + trail


def _request_line(match: re.Match[str]) -> str:
    path = redact_location("http://h" + match["path"])[len("http://h") :]
    return f"{match['verb']} {path}"


class RedactFilter(logging.Filter):
    """A logging filter that redacts secrets from every record: its message, and the
    traceback and stack it carries (formatted here, so no handler formats them raw)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose args do not fit: leave it to the handler
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


#: Libraries that log request lines, bodies, headers or token answers at DEBUG
#: (requests-oauthlib logs the token request body with the PKCE code_verifier, the
#: client secret as a Basic header and the tokens it got; urllib3 logs each request line).
LIBRARY_LOGGERS = (
    "oauthlib",
    "requests_oauthlib",
    "google_auth_oauthlib",
    "google_auth_httplib2",
    "google.auth",
    "google.oauth2",
    "googleapiclient",
    "httplib2",
    "msal",
    "requests",
    "urllib3",
)
#: Their loggers that log so today (a filter on a logger does not reach its children, so
#: each one that makes records gets its own; ones made later are caught by the next call).
_KNOWN = (
    "requests_oauthlib.oauth2_session",
    "requests_oauthlib.oauth2_auth",
    "google_auth_oauthlib.flow",
    "google.auth.transport.requests",
    "google.auth._default",
    "google.oauth2._client",
    "google.oauth2.reauth",
    "googleapiclient.discovery",
    "googleapiclient.http",
    "googleapiclient.model",
    "msal.application",
    "msal.authority",
    "msal.token_cache",
    "msal.oauth2cli.oauth2",
    "msal.oauth2cli.oidc",
    "urllib3.connectionpool",
    "urllib3.util.retry",
)


def guard_library_logs() -> None:
    """Give every logger of :data:`LIBRARY_LOGGERS` (and each child made so far) a
    :class:`RedactFilter`, so whatever handler the application installs, the records those
    libraries make at DEBUG carry no secret. Safe to call again."""
    names = set(LIBRARY_LOGGERS) | set(_KNOWN)
    names |= {
        name
        for name in list(logging.root.manager.loggerDict)
        if any(name == n or name.startswith(n + ".") for n in LIBRARY_LOGGERS)
    }
    for name in sorted(names):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactFilter) for f in target.filters):
            target.addFilter(_GUARD)


_GUARD = RedactFilter()
guard_library_logs()
