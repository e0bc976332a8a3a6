"""A small SMTP notifier every domain can reuse (billing notices, "too long" call flags).

stdlib only: `smtplib` runs in a worker thread (``asyncio.to_thread``) so a slow mail
server never blocks the event loop. Configuration comes from a `MailConfig`, built in
code or from the environment (`MailConfig.from_env`)::

    DIALERD_SMTP_HOST      mail server; unset means "no mail configured"
    DIALERD_SMTP_PORT      default 25 (587 is usual with STARTTLS)
    DIALERD_SMTP_FROM      sender address, default dialerd@localhost
    DIALERD_SMTP_STARTTLS  1/true/yes to upgrade with STARTTLS before sending
    DIALERD_SMTP_USER      login name (AUTH only when set)
    DIALERD_SMTP_PASSWORD  its password
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid


class MailError(RuntimeError):
    """A message could not be handed to the mail server; the text says why."""


@dataclass(frozen=True)
class MailConfig:
    """Where and how to send. `ssl_context` defaults to the system's verified context."""

    host: str
    port: int = 25
    sender: str = "dialerd@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MailConfig | None:
        """The configuration in ``DIALERD_SMTP_*``, or None when no host is set."""
        env = os.environ if env is None else env
        host = env.get("DIALERD_SMTP_HOST", "").strip()
        if not host:
            return None
        port_text = env.get("DIALERD_SMTP_PORT", "25")
        try:
            port = int(port_text)
        except ValueError:
            raise MailError(f"DIALERD_SMTP_PORT is not a port number: {port_text!r}") from None
        return cls(
            host=host,
            port=port,
            sender=env.get("DIALERD_SMTP_FROM", "dialerd@localhost"),
            starttls=env.get("DIALERD_SMTP_STARTTLS", "").lower() in {"1", "true", "yes"},
            username=env.get("DIALERD_SMTP_USER") or None,
            password=env.get("DIALERD_SMTP_PASSWORD") or None,
        )


def build_message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text UTF-8 message with the headers mail servers expect."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message.set_content(body)
    return message


def _send_blocking(config: MailConfig, message: EmailMessage) -> None:
    with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
        smtp.ehlo()
        if config.starttls:
            smtp.starttls(context=config.ssl_context or ssl.create_default_context())
            smtp.ehlo()
        if config.username is not None:
            smtp.login(config.username, config.password or "")
        smtp.send_message(message)


class Mailer:
    """Sends plain-text notices through one SMTP server."""

    def __init__(self, config: MailConfig) -> None:
        self.config = config

    async def send(self, to: str, subject: str, body: str) -> None:
        """Deliver one message to the server; raises MailError with the reason."""
        message = build_message(self.config.sender, to, subject, body)
        try:
            await asyncio.to_thread(_send_blocking, self.config, message)
        except (smtplib.SMTPException, OSError) as exc:
            where = f"{self.config.host}:{self.config.port}"
            raise MailError(f"sending to {to} via {where} failed: {exc}") from exc
