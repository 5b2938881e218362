"""Real servers on 127.0.0.1 for the alert tests: a fake Telegram Bot API, a webhook
receiver, an SMTP server with STARTTLS (aiosmtpd, self-signed certificate made here);
plus a fake clock, TCP listeners that stand for proxies, and a log writer for ingest."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squidguard_bloom.monitor.alerts.channels import verify_signature


class FakeClock:
    """The monitor's clock in a scripted timeline: moves only when told."""

    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@dataclass
class Received:
    at: float  # time.monotonic() on arrival
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class HttpRecorder:
    """What a fake HTTP endpoint received, and how it should answer next."""

    received: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.body for r in self.received]


@contextmanager
def http_endpoint(ok: dict[str, Any]) -> Iterator[HttpRecorder]:
    """A ThreadingHTTPServer on 127.0.0.1 that records every POST and answers the queued
    answers first (status, JSON, headers), then 200 with ok."""
    rec = HttpRecorder()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with rec.lock:
                rec.received.append(Received(time.monotonic(), self.path, json.loads(raw),
                                             {k.lower(): v for k, v in self.headers.items()}))
                rec.received[-1].headers["_raw"] = raw.decode()
                status, answer, headers = rec.answers.pop(0) if rec.answers else (200, ok, {})
            data = json.dumps(answer).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def telegram_texts(rec: HttpRecorder) -> list[str]:
    return [b["text"] for b in rec.bodies()]


def webhook_checked(rec: HttpRecorder, secret: bytes) -> list[dict[str, Any]]:
    """Every webhook body, after checking its HMAC signature."""
    out = []
    with rec.lock:
        got = list(rec.received)
    for r in got:
        assert verify_signature(secret, r.headers["x-sgb-timestamp"], r.headers["_raw"].encode(),
                                r.headers["x-sgb-signature"]), "bad webhook signature"
        out.append(r.body)
    return out


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1, made now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "smtp.crt", tmp / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Mailbox:
    mails: list[tuple[str, list[str], str]] = field(default_factory=list)  # from, to, data
    tls: list[bool] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # recipients answered 550
    port: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server(tmp: Path) -> Iterator[tuple[Mailbox, Path]]:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS; yields the mailbox and the CA file."""
    from aiosmtpd.controller import Controller

    cert, key = self_signed(tmp)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    box = Mailbox()

    class Handler:
        async def handle_RCPT(self, _server: Any, _session: Any, envelope: Any, address: str,
                              _options: list[str]) -> str:
            if address in box.refuse:
                return "550 5.1.1 no such mailbox"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
            box.tls.append(session.ssl is not None)
            box.mails.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.content.decode("utf-8", "replace")))
            return "250 OK"

    box.port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port, tls_context=ctx,
                            require_starttls=True)
    controller.start()
    try:
        yield box, cert
    finally:
        controller.stop()


class Listener:
    """A TCP port on 127.0.0.1 that accepts (a proxy's Squid or sshd) until close().

    A thread accepts and closes each connection, so probes never fill the backlog."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.port = free_port()
        self.open()

    def open(self) -> None:
        if self.sock is not None:
            return
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        s.settimeout(0.05)
        self.sock = s

        def serve() -> None:
            while self.sock is s:
                try:
                    conn, _ = s.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                conn.close()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        s, self.sock = self.sock, None
        if s is not None:
            if self.thread is not None:
                self.thread.join(2)
            s.close()


class ProxyLogs:
    """One proxy's incoming directory with a helper stream, written on the fake clock."""

    def __init__(self, root: Path, name: str) -> None:
        self.dir = root / name
        self.path = self.dir / "squidGuard" / "00000001-1-1.log"
        self.path.parent.mkdir(parents=True)
        self.path.touch()

    def status(self, now: float, emergency: str = "no", pid: int = 4242) -> None:
        stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        filt = "- fpr=- target=-" if emergency != "no" else "12/1000 fpr=1e-12 target=0.001"
        with open(self.path, "a") as fh:
            fh.write(f"{stamp} [{pid}] INFO: status: answered=5 blocks=1 welcomes=1 "
                     f"filter={filt} over_capacity=no emergency={emergency} uptime=60 "
                     "interval=60\n")
