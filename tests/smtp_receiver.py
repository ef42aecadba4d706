"""A loopback SMTP server for alert tests (aiosmtpd): records messages, can require a login, can refuse.

Usage::

    with SmtpReceiver(user="desk", password="s3cret-pass") as smtp:
        url = smtp.apprise_url(to="desk@example.org")      # mailto://desk:s3cret-pass@127.0.0.1:PORT?...
        smtp.refuse = True                                  # answers 451 to every message
        assert smtp.messages[0]["Subject"].startswith("[newsmon]")

``down()`` stops the server so connections are refused; ``up()`` starts it again on the same port.
"""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

__all__ = ["SmtpReceiver", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, receiver: "SmtpReceiver") -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        if self.receiver.refuse:
            return "451 4.3.0 mailbox temporarily unavailable"
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.receiver.lock:
            self.receiver.messages.append(message)          # type: ignore[arg-type]
            self.receiver.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class SmtpReceiver:
    def __init__(self, user: str | None = None, password: str | None = None) -> None:
        self.user = user
        self.password = password
        self.port = free_port()
        self.refuse = False
        self.lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self._controller: Controller | None = None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode()
            ok = login == self.user and auth_data.password.decode() == self.password
            if ok:
                self.logins.append(login)
            return AuthResult(success=ok)
        return AuthResult(success=False, handled=False)

    def up(self) -> "SmtpReceiver":
        kwargs: dict[str, Any] = {}
        if self.user:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False, auth_required=True)
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def apprise_url(self, to: str = "desk@example.org", sender: str = "newsmon@example.org") -> str:
        auth = ""
        if self.user:
            auth = f"{quote(self.user, safe='')}:{quote(self.password or '', safe='')}@"
        return f"mailto://{auth}127.0.0.1:{self.port}?smtp=127.0.0.1&from={sender}&to={to}"

    def __enter__(self) -> "SmtpReceiver":
        return self.up()

    def __exit__(self, *exc_info: object) -> None:
        self.down()
