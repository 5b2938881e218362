"""Delivery: Telegram Bot API, a signed JSON webhook, e-mail over SMTP with STARTTLS.

Each channel has its own worker thread and bounded queue (:class:`Dispatcher`):
``submit`` never blocks (a full queue drops the message and says so), so
neither ingest nor rule evaluation ever waits for a network. A worker paces
its channel (``min_interval`` between messages; Telegram: 1 s, its per-chat
limit), honours a 429's ``retry_after`` / ``Retry-After``, and retries other
temporary failures with exponential back-off (1, 2, 4 ... 60 s) until
``max_attempts`` or ``max_age``. Permanent refusals (a wrong token, chat or
recipient: HTTP 4xx, SMTP 5xx) are not retried. Results come back on a queue
that the service writes to the database; workers never touch it.

Webhook signature: ``X-SGB-Timestamp: <unix seconds>`` and
``X-SGB-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the
secret>``; a receiver recomputes it, compares in constant time and rejects old
timestamps (replays).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import queue
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from squidguard_bloom.monitor.alerts.settings import Channel, read_credentials, read_secret

log = logging.getLogger("squidguard_bloom.monitor.alerts")

TELEGRAM_API = "https://api.telegram.org"
SIGNATURE_HEADER = "X-SGB-Signature"
TIMESTAMP_HEADER = "X-SGB-Timestamp"
BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0


class DeliveryError(Exception):
    """A message was not delivered; permanent ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass
class Message:
    """What a channel sends (one row of alert_notifications)."""

    id: int
    title: str
    body: str
    payload: dict[str, Any]
    created: float  # wall clock when queued (max_age)


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes,
                                                                                    Any]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"cannot reach {url.split('/bot', maxsplit=1)[0]}: {reason}") from exc


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Sender:
    """One channel's way of delivering a message."""

    name: str
    min_interval: float = 0.0

    def send(self, msg: Message) -> None:  # pragma: no cover - interface
        """Deliver msg or raise DeliveryError."""
        raise NotImplementedError


class TelegramSender(Sender):
    """sendMessage of the Bot API; token and chat_id from a credentials file."""

    def __init__(self, channel: Channel) -> None:
        o = channel.options
        creds = read_credentials(o["credentials_file"], ("token", "chat_id"), "Telegram")
        self.name = channel.name
        self.url = f"{o.get('api_url', TELEGRAM_API).rstrip('/')}/bot{creds['token']}/sendMessage"
        self.chat_id = creds["chat_id"]
        self.min_interval = o.get("min_interval", 1.0)
        self.timeout = o.get("timeout", 10.0)

    def send(self, msg: Message) -> None:
        text = f"{msg.title}\n{msg.body}"[:4096]  # the API's limit for one message
        body = json.dumps({"chat_id": self.chat_id, "text": text,
                           "disable_web_page_preview": True}).encode()
        status, data, headers = _post(self.url, body, {"Content-Type": "application/json"},
                                      self.timeout)
        if status == 200:
            return
        try:
            answer = json.loads(data)
        except ValueError:
            answer = {}
        described = answer.get("description") or f"HTTP {status}"
        if status == 429:
            after = (answer.get("parameters") or {}).get("retry_after")
            raise DeliveryError(f"Telegram: {described}",
                                retry_after=float(after) if after is not None
                                else _retry_after(headers) or BACKOFF_MIN)
        permanent = 400 <= status < 500
        hint = " (check token and chat_id in the credentials file)" if permanent else ""
        raise DeliveryError(f"Telegram: {described}{hint}", permanent=permanent)


class WebhookSender(Sender):
    """A JSON POST signed with HMAC-SHA256 (see the module docstring)."""

    def __init__(self, channel: Channel) -> None:
        o = channel.options
        self.name = channel.name
        self.url = o["url"]
        self.secret = read_secret(o["secret_file"])
        self.min_interval = o.get("min_interval", 0.0)
        self.timeout = o.get("timeout", 10.0)

    def send(self, msg: Message) -> None:
        body = json.dumps(msg.payload, sort_keys=True).encode()
        stamp = str(int(time.time()))
        mac = hmac.new(self.secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        status, _data, headers = _post(self.url, body, {
            "Content-Type": "application/json", TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: f"sha256={mac}", "User-Agent": "squidguard-bloom-monitor"},
            self.timeout)
        if 200 <= status < 300:
            return
        if status == 429:
            raise DeliveryError("webhook: HTTP 429", retry_after=_retry_after(headers))
        raise DeliveryError(f"webhook {self.url}: HTTP {status}",
                            permanent=400 <= status < 500)


def verify_signature(secret: bytes, timestamp: str, body: bytes, header: str) -> bool:
    """Whether a webhook's signature header matches (for receivers and the tests)."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={mac}", header)


class EmailSender(Sender):
    """SMTP, upgraded with STARTTLS (default on), optional login from a credentials file."""

    def __init__(self, channel: Channel) -> None:
        o = channel.options
        self.name = channel.name
        self.host = o["host"]
        self.port = o.get("port", 587)
        self.starttls = o.get("starttls", True)
        self.sender = o["sender"]
        self.to = o["to"]
        self.min_interval = o.get("min_interval", 1.0)
        self.timeout = o.get("timeout", 20.0)
        self.context = ssl.create_default_context(cafile=o.get("ca_file"))
        self.login: dict[str, str] | None = None
        if "credentials_file" in o:
            self.login = read_credentials(o["credentials_file"], ("user", "password"), "e-mail")

    def send(self, msg: Message) -> None:
        mail = EmailMessage()
        mail["Subject"] = msg.title
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.to)
        mail.set_content(msg.body + "\n")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=self.context)
                    smtp.ehlo()
                if self.login is not None:
                    smtp.login(self.login["user"], self.login["password"])
                smtp.send_message(mail)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused,
                smtplib.SMTPAuthenticationError) as exc:
            raise DeliveryError(f"e-mail via {self.host}: refused: {exc}",
                                permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"e-mail via {self.host}: {exc.smtp_code} {exc.smtp_error!r}",
                                permanent=500 <= exc.smtp_code < 600) from exc
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise DeliveryError(f"e-mail via {self.host}:{self.port}: {exc}") from exc


SENDERS = {"telegram": TelegramSender, "webhook": WebhookSender, "email": EmailSender}


@dataclass
class Result:
    """What became of one message."""

    id: int
    status: str  # sent | failed | dropped
    attempts: int
    delivered: float | None
    error: str | None


class _Worker:
    def __init__(self, sender: Sender, size: int, max_attempts: int, max_age: float,
                 results: queue.Queue[Result], stop: threading.Event) -> None:
        self.sender = sender
        self.queue: queue.Queue[Message | None] = queue.Queue(maxsize=size)
        self.max_attempts = max_attempts
        self.max_age = max_age
        self.results = results
        self.stop = stop
        self.last_sent = 0.0
        self.inflight = 0  # submitted and not yet reported
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, name=f"alerts-{sender.name}",
                                       daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            msg = self.queue.get()
            if msg is None:
                return
            self.results.put(self.deliver(msg))
            with self.lock:
                self.inflight -= 1

    def deliver(self, msg: Message) -> Result:
        attempts, backoff, error = 0, BACKOFF_MIN, "stopped before delivery"
        while not self.stop.is_set():
            wait = self.last_sent + self.sender.min_interval - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                break
            attempts += 1
            try:
                self.sender.send(msg)
            except DeliveryError as exc:
                self.last_sent = time.monotonic()  # pacing counts from the end of a try
                error = str(exc)
                if exc.permanent:
                    log.error("alert %d not delivered by %s: %s", msg.id, self.sender.name,
                              error)
                    return Result(msg.id, "failed", attempts, None, error)
                if attempts >= self.max_attempts or time.time() - msg.created > self.max_age:
                    log.error("alert %d given up by %s after %d attempts: %s", msg.id,
                              self.sender.name, attempts, error)
                    return Result(msg.id, "failed", attempts, None, error)
                delay = exc.retry_after if exc.retry_after is not None else backoff
                if exc.retry_after is None:
                    backoff = min(backoff * 2, BACKOFF_MAX)
                log.warning("alert %d via %s: %s; retrying in %.0f s", msg.id,
                            self.sender.name, error, delay)
                if self.stop.wait(delay):
                    break
                continue
            self.last_sent = time.monotonic()
            return Result(msg.id, "sent", attempts, time.time(), None)
        return Result(msg.id, "queued", attempts, None, error)


class Dispatcher:
    """One worker per channel; submit() never blocks."""

    def __init__(self, senders: list[Sender], queue_size: int = 100, max_attempts: int = 8,
                 max_age: float = 3600.0) -> None:
        self.results: queue.Queue[Result] = queue.Queue()
        self._stop = threading.Event()
        self.workers = {s.name: _Worker(s, queue_size, max_attempts, max_age, self.results,
                                        self._stop) for s in senders}
        for w in self.workers.values():
            w.thread.start()

    @property
    def channels(self) -> list[str]:
        return list(self.workers)

    def submit(self, channel: str, msg: Message) -> bool:
        """Queue msg for channel; False (and a 'dropped' result) when its queue is full."""
        worker = self.workers[channel]
        with worker.lock:
            worker.inflight += 1
        try:
            worker.queue.put_nowait(msg)
        except queue.Full:
            with worker.lock:
                worker.inflight -= 1
            self.results.put(Result(msg.id, "dropped", 0, None,
                                    f"the {channel} queue is full (channel down for long?)"))
            return False
        return True

    def drain(self) -> list[Result]:
        """Results that came back since the last call."""
        out = []
        while True:
            try:
                out.append(self.results.get_nowait())
            except queue.Empty:
                return out

    def idle(self) -> bool:
        """Nothing queued or being sent (tests wait for this)."""
        return all(w.inflight == 0 for w in self.workers.values())

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers (a message being retried stays queued in the database)."""
        self._stop.set()
        for w in self.workers.values():
            with contextlib.suppress(queue.Full):  # the stop event ends it then
                w.queue.put_nowait(None)
        for w in self.workers.values():
            w.thread.join(timeout)
