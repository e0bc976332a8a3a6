"""E-mail notices (R-SUB-4, R-SUB-5) through dialerd.mail against a real aiosmtpd server
started in the test: plain, AUTH, STARTTLS, a server that is down, and the billing outbox."""

from __future__ import annotations

import email
import email.header
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from dialerd.billing.rules import AccountKind, Plan, UserType
from dialerd.billing.service import BillingService
from dialerd.mail import MailConfig, Mailer, MailError
from dialerd.store.billing import BillingStore
from dialerd.store.db import open_db


@dataclass
class Inbox:
    """aiosmtpd handler that keeps what it is given."""

    messages: list[tuple[list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else content.encode()
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(raw)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"dialer", b"s3cret")
    return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def smtp_auth() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=check_login,
        auth_required=True, auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


async def test_mail_is_delivered_to_a_real_smtp_server(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    mailer = Mailer(MailConfig(host="127.0.0.1", port=port, sender="billing@dialer.test"))
    await mailer.send("agent@example.org", "Subject with ümlaut", "Body line\nsecond line\n")
    [(rcpt, message)] = inbox.messages
    assert rcpt == ["agent@example.org"]
    assert message["From"] == "billing@dialer.test"
    assert message["To"] == "agent@example.org"
    assert str(email.header.make_header(email.header.decode_header(message["Subject"]))) == (
        "Subject with ümlaut"
    )
    assert message["Message-ID"]
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert body.decode().splitlines() == ["Body line", "second line"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_mail_logs_in_when_a_user_is_configured(smtp_auth: tuple[Inbox, int]) -> None:
    inbox, port = smtp_auth
    good = MailConfig(host="127.0.0.1", port=port, username="dialer", password="s3cret")
    await Mailer(good).send("a@example.org", "s", "b")
    assert len(inbox.messages) == 1
    # aiosmtpd stops answering after a failed LOGIN; a short timeout keeps the test quick.
    bad = MailConfig(host="127.0.0.1", port=port, username="dialer", password="wrong", timeout=2)
    with pytest.raises(MailError, match="failed"):
        await Mailer(bad).send("a@example.org", "s", "b")
    anonymous = MailConfig(host="127.0.0.1", port=port)
    with pytest.raises(MailError):
        await Mailer(anonymous).send("a@example.org", "s", "b")
    assert len(inbox.messages) == 1


async def test_mail_upgrades_with_starttls_and_verifies_the_server(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=server_tls, require_starttls=True,
        authenticator=check_login, auth_required=True,
    )  # fmt: skip
    controller.start()
    try:
        trusted = ssl.create_default_context(cafile=str(cert))
        config = MailConfig(
            host="127.0.0.1", port=port, starttls=True, username="dialer", password="s3cret",
            ssl_context=trusted,
        )  # fmt: skip
        await Mailer(config).send("a@example.org", "over TLS", "secret body")
        assert [m["Subject"] for _, m in inbox.messages] == ["over TLS"]
        untrusted = MailConfig(host="127.0.0.1", port=port, starttls=True)
        with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED"):
            await Mailer(untrusted).send("a@example.org", "s", "b")
        plain = MailConfig(host="127.0.0.1", port=port)
        with pytest.raises(MailError):
            await Mailer(plain).send("a@example.org", "s", "b")
    finally:
        controller.stop()
    assert len(inbox.messages) == 1


async def test_mail_to_a_server_that_is_down_raises_mail_error() -> None:
    config = MailConfig(host="127.0.0.1", port=free_port(), timeout=2)
    with pytest.raises(MailError, match=r"via 127\.0\.0\.1"):
        await Mailer(config).send("a@example.org", "s", "b")


def test_mail_config_from_environment() -> None:
    assert MailConfig.from_env({}) is None
    config = MailConfig.from_env(
        {"DIALERD_SMTP_HOST": "mail.test", "DIALERD_SMTP_PORT": "587",
         "DIALERD_SMTP_STARTTLS": "yes", "DIALERD_SMTP_USER": "u",
         "DIALERD_SMTP_PASSWORD": "p", "DIALERD_SMTP_FROM": "x@y.z"}
    )  # fmt: skip
    assert config == MailConfig("mail.test", 587, "x@y.z", True, "u", "p")
    assert "p" not in repr(config).replace("port", "").replace("starttls", "")
    with pytest.raises(MailError, match="not a port"):
        MailConfig.from_env({"DIALERD_SMTP_HOST": "h", "DIALERD_SMTP_PORT": "smtp"})


async def test_r_sub_4_5_billing_notices_reach_the_user_and_survive_a_mail_outage(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    """Assignment (R-SUB-5) and short-credit (R-SUB-4) notices are queued with the event,
    kept while the mail server is down, and delivered once it answers."""
    inbox, port = smtp
    conn = await open_db(tmp_path / "mail.db")
    try:
        service = BillingService(BillingStore(conn))
        now = datetime(2026, 1, 31, 9)
        await service.add_account("std", AccountKind.STANDARD, now)
        await service.put_user("out", "std", UserType.OUTSIDE_SALES, "out@example.org")
        await service.put_user("quiet", "std", UserType.OUTSIDE_SALES, None)
        await service.add_credit("std", 5000, "x", now)
        await service.subscribe("out", Plan.MONTH, now, auto_renew=True)
        await service.subscribe("quiet", Plan.MONTH, now)

        down = Mailer(MailConfig(host="127.0.0.1", port=free_port(), timeout=2))
        assert await service.flush_notices(down, now) == (0, 1)  # "quiet" has no address
        assert inbox.messages == []

        await service.tick(datetime(2026, 2, 25, 6))  # three days before Feb 28
        up = Mailer(MailConfig(host="127.0.0.1", port=port, sender="billing@dialer.test"))
        assert await service.flush_notices(up, datetime(2026, 2, 25, 7)) == (2, 0)
        assert await service.flush_notices(up, datetime(2026, 2, 25, 8)) == (0, 0)
    finally:
        await conn.close()
    assert [(rcpt, m["Subject"]) for rcpt, m in inbox.messages] == [
        (["out@example.org"], "Your dialer subscription was assigned"),
        (["out@example.org"], "Not enough credit to renew your dialer subscription"),
    ]
    body = inbox.messages[1][1].get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "ends on 2026-02-28" in body.decode()
    assert "needs 25.00 EUR" in body.decode()
