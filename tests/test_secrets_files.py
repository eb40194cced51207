"""Files that hold personal data or secrets are the owner's alone, and token saves never
collide: the store, the queue, the outbox and the tokens are 0600 in 0700 folders whatever
the umask, and two processes saving one token 300 times each both succeed."""

from __future__ import annotations

import json
import logging
import os
import queue
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from cryptography.fernet import Fernet
from hypothesis import assume, given
from hypothesis import strategies as st

from connectors.secrets import RedactFilter, TokenStore, redact
from connectors.smtp import MaildirTransport
from tests.conftest import ROOT, write
from worker import config as config_mod
from worker.queue.app import build_huey
from worker.store import Store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The usual umask 022, under which a plain open() makes files others can read."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# -- tokens -------------------------------------------------------------------------------
SAVER = textwrap.dedent(
    """\
    import json, sys
    from pathlib import Path
    from connectors.secrets import RedactFilter, TokenStore, redact

    folder, key, who, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = TokenStore(Path(folder), key)
    errors, reads = [], 0
    for i in range(rounds):
        try:
            store.save("google:ana@example.com", json.dumps({"who": who, "i": i}).encode())
            data = json.loads(store.load("google:ana@example.com") or b"null")
            reads += data is not None and data["who"] in ("a", "b")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"errors": errors, "reads": reads}))
    """
)


def test_two_processes_saving_one_token_300_times_each_never_fail_and_always_decrypt(
    tmp_path: Path,
) -> None:
    key = Fernet.generate_key().decode()
    folder = tmp_path / "tokens"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SAVER, str(folder), key, who, "300"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for who in ("a", "b")
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)  # waits for the process, with a deadline
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert [r["errors"] for r in results] == [[], []]
    assert [r["reads"] for r in results] == [300, 300]  # every read decrypted
    assert [p.name for p in folder.iterdir()] == ["google_ana@example.com.token"]  # no debris
    last = json.loads(TokenStore(folder, key).load("google:ana@example.com") or b"")
    assert last["i"] == 299


def test_a_failed_save_leaves_the_old_token_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TokenStore(tmp_path / "tokens", Fernet.generate_key())
    store.save("x", b"old")

    def broken(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="No space"):
        store.save("x", b"new")
    monkeypatch.undo()
    assert store.load("x") == b"old"
    assert [p.name for p in (tmp_path / "tokens").iterdir()] == ["x.token"]


def test_token_files_are_0600_in_a_0700_folder_under_a_permissive_umask(
    tmp_path: Path, permissive_umask: None
) -> None:
    folder = tmp_path / "var" / "tokens"
    path = TokenStore(folder, Fernet.generate_key()).save("outlook:m365:ana@example.com", b"t")
    assert mode(path) == 0o600
    assert mode(folder) == 0o700
    assert mode(tmp_path / "var") == 0o700  # made by steadyhand, so made closed
    folder.chmod(0o755)  # loosened by hand, or made by an older steadyhand
    TokenStore(folder, Fernet.generate_key()).save("other", b"t")
    assert mode(folder) == 0o700


# -- the store and the queue --------------------------------------------------------------
def test_the_store_and_its_write_ahead_log_are_0600_in_a_0700_folder(
    tmp_path: Path, permissive_umask: None
) -> None:
    db = tmp_path / "var" / "steadyhand.db"
    store = Store(f"sqlite:///{db}")
    store.record_sync_error(
        "ana@example.com:ics:cal/ana.ics", "ana@example.com", "ics", "x", datetime.now(UTC)
    )
    try:
        files = sorted(tmp_path.glob("var/steadyhand.db*"))
        assert [p.name for p in files] == [
            "steadyhand.db",
            "steadyhand.db-shm",
            "steadyhand.db-wal",
        ]
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert mode(tmp_path / "var") == 0o700
    finally:
        store.close()


def test_an_existing_store_made_readable_by_others_is_closed_again(
    tmp_path: Path, permissive_umask: None
) -> None:
    var = tmp_path / "var"
    var.mkdir()
    var.chmod(0o755)  # as steadyhand made it before
    Store(f"sqlite:///{var / 'steadyhand.db'}").close()
    (var / "steadyhand.db").chmod(0o644)
    Store(f"sqlite:///{var / 'steadyhand.db'}").close()
    assert mode(var / "steadyhand.db") == 0o600
    assert mode(var) == 0o700


def test_a_folder_that_is_not_steadyhands_is_left_as_it_is_with_a_warning(
    tmp_path: Path, permissive_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "srv"
    shared.mkdir()
    shared.chmod(0o755)
    (shared / "index.html").write_text("someone else's")
    with caplog.at_level(logging.WARNING):
        Store(f"sqlite:///{shared / 'steadyhand.db'}").close()
    assert mode(shared) == 0o755  # not ours to close
    assert mode(shared / "steadyhand.db") == 0o600  # but the store is
    assert f"chmod 700 {shared}" in caplog.text


def test_the_sqlite_queue_is_0600_in_a_0700_folder(tmp_path: Path, permissive_umask: None) -> None:
    write(tmp_path / "steadyhand.yaml", "queue: sqlite:///var/queue.db\n")
    settings = config_mod.load(tmp_path / "steadyhand.yaml")
    huey = build_huey(settings)
    huey.enqueue(huey.task()(lambda: None).s())
    files = sorted(tmp_path.glob("var/queue.db*"))
    assert files and files[0].name == "queue.db"
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert mode(tmp_path / "var") == 0o700


# -- the outbox ---------------------------------------------------------------------------
def message(n: int) -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "steadyhand@example.com", "ana@example.com", "Your day"
    m["Message-ID"] = f"<{n}@steadyhand.example.com>"
    m.set_content("6.8 h in meetings")
    return m


def test_outbox_messages_are_0600_in_0700_folders_under_a_permissive_umask(
    tmp_path: Path, permissive_umask: None
) -> None:
    outbox = tmp_path / "var" / "outbox"
    written = [Path(MaildirTransport(outbox).send(message(n))) for n in range(3)]
    assert [mode(p) for p in written] == [0o600] * 3
    assert all(p.parent == outbox / "new" for p in written)
    for folder in (tmp_path / "var", outbox, outbox / "new", outbox / "cur", outbox / "tmp"):
        assert mode(folder) == 0o700, folder
    assert list((outbox / "tmp").iterdir()) == []
    outbox.chmod(0o755)  # loosened: the outbox is steadyhand's own, so it is closed again
    MaildirTransport(outbox).send(message(9))
    assert mode(outbox) == 0o700


def test_the_demo_leaves_its_store_and_outbox_readable_by_the_owner_only(
    run_cli, project: Path, permissive_umask: None
) -> None:
    result = run_cli("demo")
    assert result.code == 0, result.err
    var = project / "var"
    emails = sorted((var / "outbox" / "new").glob("*.eml"))
    assert len(emails) == 4
    private = [*emails, *var.glob("steadyhand.db*")]
    assert {str(p): mode(p) for p in private} == {str(p): 0o600 for p in private}
    folders = [var, var / "outbox", var / "outbox" / "new", var / "outbox" / "tmp"]
    assert {str(p): mode(p) for p in folders} == {str(p): 0o700 for p in folders}


# -- OAuth secrets stay out of every log record ---------------------------------------------
def formatted(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as a handler writes it (message, traceback and stack)."""
    fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(fmt.format(r) for r in caplog.records)


@pytest.fixture
def google_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[dict[str, str]]]]:
    """The loopback Google, remembering each token request's form (the PKCE verifier)."""
    from tests.fakes.google import GoogleFake

    fake = GoogleFake(seed=5)
    forms: list[dict[str, str]] = []
    answer = fake._token

    def token(body: bytes) -> Any:
        forms.append({k: v[0] for k, v in parse_qs(body.decode()).items()})
        return answer(body)

    monkeypatch.setattr(fake, "_token", token)
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake speaks http
    yield fake, forms
    fake.close()


def browse(urls: queue.Queue[str], answers: list[int]) -> threading.Thread:
    """The user's browser: waits (with a deadline) for the address, follows it home."""

    def run() -> None:
        session = requests.Session()
        session.trust_env = False
        answers.append(session.get(urls.get(timeout=10), timeout=10).status_code)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def oauth_secrets(fake: Any, forms: list[dict[str, str]]) -> set[str]:
    found = set(fake.secrets())
    for form in forms:
        found |= {form[k] for k in SECRET_FIELDS if form.get(k)}
    return found


SECRET_FIELDS = ("code", "code_verifier", "client_secret", "refresh_token", "assertion")


def test_connect_google_logs_no_secret_or_verifier_even_at_debug(
    run_cli,
    project: Path,
    google_fake: tuple[Any, list[dict[str, str]]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.fakes.google import client_secrets

    fake, forms = google_fake
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", Fernet.generate_key().decode())
    write(project / "client.json", json.dumps(client_secrets(fake)))
    write(
        project / "steadyhand.yaml",
        f"""\
accounts:
  - {{name: g, kind: google, auth: oauth, client_secrets: client.json, api_endpoint: "{fake.url}"}}
people:
  - {{email: ana@example.com, calendar: {{account: g, id: ana@example.com}}}}
""",
    )
    opened: queue.Queue[str] = queue.Queue()

    class Browser:
        def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
            opened.put(url)
            return True

    monkeypatch.setattr("webbrowser.get", lambda using=None: Browser())
    caplog.set_level(logging.DEBUG)
    answers: list[int] = []
    browser = browse(opened, answers)
    result = run_cli("--log-level", "debug", "connect", "google", "--person", "ana@example.com")
    browser.join(timeout=10)
    assert result.code == 0, result.err
    assert answers == [200] and "Connected ana@example.com" in result.out
    verifiers = [f["code_verifier"] for f in forms if "code_verifier" in f]
    assert len(verifiers) == 1  # PKCE was used, so there was a verifier to leak
    assert "requests_oauthlib" in formatted(caplog)  # the library did log its requests
    secrets = oauth_secrets(fake, forms)
    assert len(secrets) >= 4  # client secret, code, verifier, access and refresh tokens
    seen = formatted(caplog) + result.err
    assert [s[:10] for s in secrets if s in seen] == []


def test_google_library_logs_are_redacted_without_the_cli_handlers(
    tmp_path: Path,
    google_fake: tuple[Any, list[dict[str, str]]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Called as a library (no CLI filter on the root handlers): each library logger
    redacts at the source."""
    from connectors.google import connect
    from tests.fakes.google import client_secrets
    from tests.test_google import spec_for

    fake, forms = google_fake
    path = write(tmp_path / "client.json", json.dumps(client_secrets(fake)))
    store = TokenStore(tmp_path / "tokens", Fernet.generate_key())
    urls: queue.Queue[str] = queue.Queue()
    answers: list[int] = []
    caplog.set_level(logging.DEBUG)
    for handler in logging.getLogger().handlers:  # as if no CLI had run in this process
        kept = [f for f in handler.filters if not isinstance(f, RedactFilter)]
        monkeypatch.setattr(handler, "filters", kept)
    browser = browse(urls, answers)
    connect(
        spec_for(fake, client_secrets=path),
        "ana@example.com",
        store,
        open_browser=False,
        print_url=urls.put,
    )
    browser.join(timeout=10)
    assert answers == [200]
    assert "code_verifier=[redacted]" in formatted(caplog)
    secrets = oauth_secrets(fake, forms)
    assert [s[:10] for s in secrets if s in formatted(caplog)] == []


def test_outlook_device_code_and_client_credentials_log_no_secret_at_debug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.graph import FakeGraph
    from tests.test_outlook import OWNER, SECRET_ENV, WINDOW, connector, iter_secrets, ref, sign_in

    caplog.set_level(logging.DEBUG)
    with FakeGraph(mailbox_timezone="Europe/Berlin") as fake:
        monkeypatch.setenv(SECRET_ENV, fake.client_secret)
        store = TokenStore(tmp_path / "tokens", Fernet.generate_key())
        sign_in(fake, store, OWNER)  # the device code flow
        connector(fake, "device_code", store).sync(ref(), WINDOW, None)
        connector(fake).sync(ref(), WINDOW, None)  # app-only: the client secret
        secrets = {*iter_secrets(fake), fake.client_secret}
    assert "msal" in formatted(caplog) or "outlook" in formatted(caplog)
    assert [s[:10] for s in secrets if s in formatted(caplog)] == []


# -- the redaction filter, shape by shape ---------------------------------------------------
@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (
            "grant_type=authorization_code&code_verifier=UMs.wI~lB4k_-x&code=4%2Fabc&x=1",
            "grant_type=authorization_code&code_verifier=[redacted]&code=[redacted]&x=1",
        ),
        ('{"password": "a b c", "n": 1}', '{"password": "[redacted]", "n": 1}'),
        ('{"id_token": "ey.J\\"x", "n": 1}', '{"id_token": "[redacted]", "n": 1}'),
        (
            "{'client_secret': 'shh', 'refresh_token': '1//0g'}",
            "{'client_secret': '[redacted]', 'refresh_token': '[redacted]'}",
        ),
        (
            "[('assertion', 'eyJ.x.y'), ('scope', 'a')]",
            "[('assertion', '[redacted]'), ('scope', 'a')]",
        ),
        ("{'Authorization': 'Basic Zm9vOmJhcg=='}", "{'Authorization': 'Basic [redacted]'}"),
        ("Authorization: Bearer ya29.a0-x", "Authorization: Bearer [redacted]"),
        ("Cookie: sid=1; csrf=2", "Cookie: [redacted]"),
        ("redirect%3Fstate%3Dx%26code%3D4%2Fabc", "redirect%3Fstate%3Dx%26code%3D[redacted]"),
        ("device_code=GmRhm; user_code=WDJB", "device_code=[redacted]; user_code=WDJB"),
        ('"GET /cal.ics?token=SECRET HTTP/1.1" 200 5', '"GET /cal.ics?token=… HTTP/1.1" 200 5'),
        (f"GET /ical/a/private-{'ab' * 16}/basic.ics", "GET /ical/a/private-…/basic.ics"),
        ("fetching https://user:pw@host/cal.ics.", "fetching https://host/cal.ics."),
        (
            "ics sync a@x:ics:https://host/c.ics#0a1b2c3d: parsed",
            "ics sync a@x:ics:https://host/c.ics#0a1b2c3d: parsed",
        ),
        (
            "refresh_token_expires_in=3 token_type=Bearer sync_token=abc",
            "refresh_token_expires_in=3 token_type=Bearer sync_token=abc",
        ),
    ],
)
def test_a_credential_is_redacted_in_every_shape_libraries_log_it(line: str, shown: str) -> None:
    assert redact(line) == shown


_value = st.text(
    alphabet=st.characters(codec="ascii", categories=("L", "N")), min_size=12, max_size=40
)


@given(
    value=_value,
    field=st.sampled_from(
        [
            "code",
            "code_verifier",
            "client_secret",
            "refresh_token",
            "access_token",
            "id_token",
            "assertion",
            "password",
            "token",
            "device_code",
            "client_assertion",
        ]
    ),
    shape=st.sampled_from(
        [
            "{k}={v}&x=1",
            '{{"{k}": "{v}"}}',
            "{{'{k}': '{v}'}}",
            "[('{k}', '{v}')]",
            "{k}: {v}",
            "x%26{k}%3D{v}%26",
            "https://h/cb?{k}={v}#x",
            '"POST /t?{k}={v} HTTP/1.1"',
            "Authorization: Bearer {v}",
            "{{'Authorization': 'Basic {v}'}}",
        ]
    ),
)
def test_no_credential_survives_redaction(value: str, field: str, shape: str) -> None:
    key = field.upper() if len(value) % 2 else field
    # A value that is part of the words around it ("Authorizatio") cannot tell us anything.
    assume(value.lower() not in (shape.format(k=key, v="") + " [redacted]").lower())
    line = shape.format(k=key, v=value)
    assert value not in redact(line)
