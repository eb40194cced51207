"""The SMTP transport against a real server (aiosmtpd in another process): what arrives."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import ROOT, write

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, made for this run."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Server:
    def __init__(self, folder: Path, *args: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "smtp_server.py"),
                "--dir",
                str(folder),
                "--port",
                str(self.port),
                *args,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "READY"

    def messages(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in sorted(self.folder.glob("*.eml"))
        ]

    def connections(self) -> int:
        return len({p.read_text().split()[0] for p in self.folder.glob("*.peer")})

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=20)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[object]:
    servers: list[Server] = []

    def run(*args: str) -> Server:
        server = Server(tmp_path / f"inbox{len(servers)}", *args)
        servers.append(server)
        return server

    yield run
    for server in servers:
        server.stop()


def team(project: Path, smtp: str) -> None:
    (project / "demo").mkdir()
    for name in ("ana", "bo", "dee"):
        (project / "demo" / f"{name}.ics").write_bytes(
            (ROOT / "config" / "demo" / f"{name}.ics").read_bytes()
        )
    write(
        project / "steadyhand.yaml",
        f"""\
timezone: Europe/Berlin
people:
  - {{email: ana@example.com, name: Ana Lima, calendar: {{ics: demo/ana.ics}}}}
  - {{email: bo@example.com, name: Bo Berg, calendar: {{ics: demo/bo.ics}}}}
  - {{email: dee@example.com, name: Dee Park, timezone: America/New_York, calendar: {{ics: demo/dee.ics}}}}
teams:
  - {{name: T, leader: ana@example.com, members: [bo@example.com, dee@example.com]}}
mail:
  from: "Steadyhand <steadyhand@example.com>"
  transport: smtp
  smtp: {smtp}
emails:
  reflection: {{to: everyone, at: "16:30"}}
""",
    )


def test_what_arrives_over_plain_smtp(run_cli, project: Path, start) -> None:
    server = start()
    team(project, f"{{host: 127.0.0.1, port: {server.port}, security: none}}")
    assert run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00").code == 0
    messages = server.messages()
    # 16:45 in Berlin is 10:45 in New York: Dee's reflection is not due yet
    assert sorted(m["To"] for m in messages) == [
        "Ana Lima <ana@example.com>",
        "Bo Berg <bo@example.com>",
    ]
    assert server.connections() == 1  # one connection for the batch
    ana = next(m for m in messages if "ana@" in m["To"])
    assert ana.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in ana.iter_parts()] == ["text/plain", "text/html"]
    assert ana["From"] == "Steadyhand <steadyhand@example.com>"
    assert ana["Subject"] == "Your day, Thursday 5 November: 6.8 h in meetings"
    assert ana["Message-ID"].endswith("@example.com>")
    assert ana["List-Unsubscribe"] is None  # no link configured, and no mailto nothing reads
    assert ana["Date"] == "Thu, 05 Nov 2026 15:45:00 +0000"
    assert run_cli("run", "--once", "--now", "2026-11-05T16:50:00+01:00").code == 0
    assert len(server.messages()) == 2  # nothing twice
    assert run_cli("run", "--once", "--now", "2026-11-05T16:40:00-05:00").code == 0
    assert [m["To"] for m in server.messages()][-1] == "Dee Park <dee@example.com>"


def test_starttls_with_a_password_from_the_environment(
    run_cli, project: Path, start, cert, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start("--starttls", *map(str, cert), "--user", "bot", "--password", "pw-from-env")
    monkeypatch.setenv("SMTP_PASSWORD", "pw-from-env")
    team(
        project,
        f"{{host: localhost, port: {server.port}, security: starttls, username: bot, password_env: SMTP_PASSWORD, ca_file: {cert[0]}}}",
    )
    assert run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00").code == 0
    assert len(server.messages()) == 2


def test_implicit_tls(run_cli, project: Path, start, cert) -> None:
    server = start("--ssl", *map(str, cert))
    team(project, f"{{host: localhost, port: {server.port}, security: ssl, ca_file: {cert[0]}}}")
    assert run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00").code == 0
    assert len(server.messages()) == 2


def test_a_refused_login_fails_for_good_and_doctor_says_so(
    run_cli, project: Path, start, cert, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start("--starttls", *map(str, cert), "--user", "bot", "--password", "right")
    monkeypatch.setenv("SMTP_PASSWORD", "wrong")
    team(
        project,
        f"{{host: localhost, port: {server.port}, security: starttls, username: bot, password_env: SMTP_PASSWORD, ca_file: {cert[0]}}}",
    )
    result = run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00")
    assert "failed" in result.out and "SMTP login to localhost refused" in result.out
    assert server.messages() == []
    doctor = run_cli("doctor")
    assert "2 failed" in doctor.out and "SMTP login to localhost refused: 535" in doctor.out


def test_an_untrusted_certificate_is_not_accepted(run_cli, project: Path, start, cert) -> None:
    server = start("--starttls", *map(str, cert))
    team(project, f"{{host: localhost, port: {server.port}, security: starttls}}")  # no ca_file
    result = run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00")
    assert "retry" in result.out and "CERTIFICATE_VERIFY_FAILED" in result.out
    assert server.messages() == []
