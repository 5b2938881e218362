"""Scripted timelines on an accelerated clock: exactly which messages go out, and when.

Everything real but the clock: the monitor's ingest reads log files into SQLite, probes
connect to TCP listeners on 127.0.0.1, and messages travel over HTTP to a fake Telegram
Bot API and a webhook receiver (and over SMTP with STARTTLS to aiosmtpd), all started
here on 127.0.0.1. The engine's clock is a FakeClock moved in 5-second evaluation steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from squidguard_bloom.monitor.alerts.service import AlertService
from squidguard_bloom.monitor.alerts.settings import parse
from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.ingest import Ingest
from squidguard_bloom.monitor.migrate import open_database
from squidguard_bloom.monitor.parse import Clock
from tests.monitor.alertkit import (
    FakeClock,
    HttpRecorder,
    Listener,
    ProxyLogs,
    free_port,
    http_endpoint,
    smtp_server,
    telegram_texts,
    webhook_checked,
)

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
STEP = 5.0
SECRET = b"test-webhook-secret"
WHAT_UNREACHABLE = ("What to do: check that the proxy is up and Squid runs (systemctl status "
                    "squid); check the network path from the monitor.")
WHAT_SILENT = ("What to do: check the shipper on the proxy (systemctl status "
               "squidguard-bloom-ship) and its link to the monitor; the proxy itself may be "
               "down.")


def hm(offset: float) -> str:
    """'2027-01-15 08:MM UTC' for T0 + offset."""
    t = time.gmtime(T0 + offset)
    return time.strftime("%Y-%m-%d %H:%M UTC", t)


class Rig:
    """A database, an ingest, an alert service and the fake endpoints, on one fake clock."""

    def __init__(self, tmp: Path, telegram: HttpRecorder, webhook: HttpRecorder,
                 alerts: dict[str, Any], proxies: dict[str, Path] | None = None,
                 extra_channels: list[dict[str, Any]] | None = None,
                 tg_min_interval: float = 0.05) -> None:
        self.tmp = tmp
        self.clock = FakeClock(T0)
        self.db: Database = open_database(str(tmp / "monitor.db"))
        creds = tmp / "telegram.toml"
        creds.write_text('token = "123:TEST"\nchat_id = "-1001"\n')
        secret = tmp / "webhook.secret"
        secret.write_bytes(SECRET + b"\n")
        table = {"channels": [
            {"type": "telegram", "credentials_file": str(creds), "api_url": telegram.url,
             "min_interval": tg_min_interval},
            {"type": "webhook", "url": webhook.url + "/hook", "secret_file": str(secret)},
            *(extra_channels or [])], **alerts}
        self.settings = parse(table, tz="UTC")
        self.ingest = Ingest(self.db, proxies=proxies or {}, clock=Clock(UTC), now=self.clock)
        self.service = self.start()
        self.sent: list[tuple[float, str, str]] = []  # (offset, kind, title)

    def start(self) -> AlertService:
        return AlertService(self.db, self.settings, clock=self.clock, background=False)

    def restart(self) -> None:
        """Stop the service as a monitor restart would, and start a new one on the same DB."""
        self.service.wait_delivered()
        self.service.close()
        self.service = self.start()

    def run_until(self, offset: float, each: Callable[[float], None] | None = None) -> None:
        """Evaluate every STEP seconds up to T0 + offset; each(offset) runs first each step."""
        while self.clock.t - T0 < offset:
            self.clock.t += STEP
            now = self.clock.t - T0
            if each is not None:
                each(now)
            self.ingest.run_pass()
            if self.settings.probes:
                self.service.prober.run_round()
            for msg in self.service.evaluate(self.clock.t):
                self.sent.append((now, msg.kind, self.title(msg)))

    def title(self, msg: Any) -> str:
        from squidguard_bloom.monitor.alerts.messages import render

        return render(msg, self.service.times)[0]

    def close(self) -> None:
        self.service.close()
        self.db.close()


@pytest.fixture
def endpoints() -> Iterator[tuple[HttpRecorder, HttpRecorder]]:
    with http_endpoint({"ok": True, "result": {}}) as tg, http_endpoint({}) as hook:
        yield tg, hook


def test_proxy_goes_silent_and_comes_back(tmp_path: Path,
                                          endpoints: tuple[HttpRecorder, HttpRecorder]) -> None:
    tg, hook = endpoints
    logs = ProxyLogs(tmp_path / "incoming", "p1")
    rig = Rig(tmp_path, tg, hook, {}, proxies={"p1": logs.dir})
    try:
        # status lines every 10 s until +300, none until +900, then again
        rig.run_until(1200, lambda now: logs.status(T0 + now)
                      if now % 10 == 0 and (now <= 300 or now >= 900) else None)
        rig.service.wait_delivered()
        # silent when quiet for more than 180 s: pending at +485, firing 120 s later;
        # back at +900, and the recovery waits for group_interval after the first message
        assert rig.sent == [(605.0, "firing", "[FIRING] Proxy silent: p1"),
                            (905.0, "resolved", "[RESOLVED] Proxy silent: p1")]
        assert telegram_texts(tg) == [
            "[FIRING] Proxy silent: p1\n"
            f"p1: no line received for more than 3 min, since {hm(300)} (5 min)\n" + WHAT_SILENT,
            "[RESOLVED] Proxy silent: p1\n"
            f"p1: recovered at 08:15 after 10 min (since {hm(300)})"]
        bodies = webhook_checked(hook, SECRET)
        assert [(b["kind"], b["status"], b["group"]) for b in bodies] == [
            ("firing", "firing", "rule=silent"), ("resolved", "resolved", "rule=silent")]
        assert bodies[0]["alerts"] == [{"rule": "silent", "proxy": "p1", "state": "firing",
                                        "since": T0 + 300, "new": True,
                                        "summary": "no line received for more than 3 min"}]
        assert bodies[1]["resolved"] == [{"rule": "silent", "proxy": "p1", "since": T0 + 300,
                                          "ended": T0 + 900,
                                          "summary": "no line received for more than 3 min"}]
        assert tg.received[0].path == "/bot123:TEST/sendMessage"
        assert tg.received[0].body["chat_id"] == "-1001"
        history = rig.db.execute("SELECT ts, from_state, to_state FROM alert_history ORDER BY id")
        assert history == [(T0 + 485, "none", "pending"), (T0 + 605, "pending", "firing"),
                           (T0 + 900, "firing", "resolved")]
        rows = rig.db.execute("SELECT channel, status, attempts FROM alert_notifications "
                              "ORDER BY id")
        assert rows == [("telegram", "sent", 1), ("webhook", "sent", 1)] * 2
    finally:
        rig.close()


def test_restart_while_a_proxy_is_silent_sends_no_false_recovery(
        tmp_path: Path, endpoints: tuple[HttpRecorder, HttpRecorder]) -> None:
    """A restarted monitor does not call quiet proxies silent at once, but a silent alert it
    already held goes on: no recovery until the proxy sends again."""
    tg, hook = endpoints
    logs = {n: ProxyLogs(tmp_path / "incoming", n) for n in ("p1", "p2")}
    rig = Rig(tmp_path, tg, hook, {}, proxies={n: p.dir for n, p in logs.items()})
    try:
        def lines(now: float) -> None:
            if now % 10 == 0 and now <= 100:
                logs["p1"].status(T0 + now)
            if now % 10 == 0 and (now <= 400 or now >= 1200):
                logs["p2"].status(T0 + now)

        rig.run_until(450, lines)  # p1 silent since +100: firing at +405
        rig.restart()
        # p2 quiet from +400, counted from the restart at +450: pending at +635, firing
        # 120 s later (not at +705); p1 stays firing (no recovery after the restart)
        rig.run_until(1400, lines)
        rig.service.wait_delivered()
        assert rig.sent == [(405.0, "firing", "[FIRING] Proxy silent: p1"),
                            (755.0, "update", "[FIRING] Proxy silent: 2 proxies"),
                            (1200.0, "update", "[FIRING] Proxy silent: p1")]
        assert telegram_texts(tg)[2].splitlines()[1:3] == [
            f"p1: no line received for more than 3 min, since {hm(100)} (18 min)",
            "Recovered:"]
    finally:
        rig.close()


def probes(listeners: dict[str, Listener]) -> dict[str, Any]:
    return {name: {"address": "127.0.0.1", "squid_port": lst.port, "ssh_port": False,
                   "icmp": False} for name, lst in listeners.items()}


def test_ten_proxies_down_at_once_make_one_message_per_channel(
        tmp_path: Path, endpoints: tuple[HttpRecorder, HttpRecorder]) -> None:
    tg, hook = endpoints
    listeners = {f"proxy-{i:02d}": Listener() for i in range(10)}
    with smtp_server(tmp_path) as (box, ca):
        email = {"type": "email", "host": "127.0.0.1", "port": box.port, "ca_file": str(ca),
                 "sender": "monitor@example.org", "to": ["noc@example.org"],
                 "min_interval": 0.05}
        rig = Rig(tmp_path, tg, hook, {"probes": probes(listeners)}, extra_channels=[email])
        try:
            def script(now: float) -> None:
                if now == 100:
                    for lst in listeners.values():
                        lst.close()
                if now == 400:
                    for lst in listeners.values():
                        lst.open()

            rig.run_until(900, script)
            rig.service.wait_delivered()
            assert rig.sent == [(160.0, "firing", "[FIRING] Proxy unreachable: 10 proxies"),
                                (460.0, "resolved", "[RESOLVED] Proxy unreachable: 10 proxies")]
            texts = telegram_texts(tg)
            assert texts[0] == "\n".join(
                ["[FIRING] Proxy unreachable: 10 proxies"]
                + [f"proxy-{i:02d}: squid 127.0.0.1:{listeners[f'proxy-{i:02d}'].port} refused, "
                   f"since {hm(100)} (1 min)" for i in range(10)] + [WHAT_UNREACHABLE])
            assert texts[1] == "\n".join(
                ["[RESOLVED] Proxy unreachable: 10 proxies"]
                + [f"proxy-{i:02d}: recovered at 08:06 after 5 min (since {hm(100)})"
                   for i in range(10)])
            assert len(webhook_checked(hook, SECRET)) == 2
            assert [m[:2] for m in box.mails] == [("monitor@example.org", ["noc@example.org"])] * 2
            assert box.tls == [True, True]  # STARTTLS was used for both
            assert "Subject: [FIRING] Proxy unreachable: 10 proxies" in box.mails[0][2]
            assert "Subject: [RESOLVED] Proxy unreachable: 10 proxies" in box.mails[1][2]
        finally:
            rig.close()
            for lst in listeners.values():
                lst.close()


def test_unreachable_inhibits_silent_and_recovery_is_reported_once(
        tmp_path: Path, endpoints: tuple[HttpRecorder, HttpRecorder]) -> None:
    tg, hook = endpoints
    logs = ProxyLogs(tmp_path / "incoming", "p1")
    squid = Listener()
    rig = Rig(tmp_path, tg, hook, {"probes": probes({"p1": squid})}, proxies={"p1": logs.dir})
    try:
        def script(now: float) -> None:
            if now == 200:
                squid.close()
            if now == 1500:
                squid.open()
            if now % 10 == 0 and (now < 200 or now >= 1500):
                logs.status(T0 + now)

        rig.run_until(2200, script)
        rig.service.wait_delivered()
        # silent would fire at +500 (quiet > 180 s, then 120 s): inhibited by unreachable
        assert rig.sent == [(260.0, "firing", "[FIRING] Proxy unreachable: p1"),
                            (1500.0, "resolved", "[RESOLVED] Proxy unreachable: p1")]
        states = rig.db.execute("SELECT rule, to_state FROM alert_history ORDER BY id")
        assert ("silent", "firing") in states  # it fired, but nobody was told
        assert len(telegram_texts(tg)) == 2
    finally:
        rig.close()
        squid.close()


def test_a_proxy_flapping_for_an_hour(tmp_path: Path,
                                      endpoints: tuple[HttpRecorder, HttpRecorder]) -> None:
    """Down 2 min, up 2 min, for an hour: at most one message per group_interval (5 min)."""
    tg, hook = endpoints
    squid = Listener()
    rig = Rig(tmp_path, tg, hook, {"probes": probes({"p1": squid})})
    try:
        def script(now: float) -> None:
            if now < 3600 and now % 240 == 0:
                squid.close()
            elif now % 240 == 120:
                squid.open()

        rig.run_until(4200, script)
        rig.service.wait_delivered()
        # down from +240k to +240k+120 (k = 1..14): each down period fires 60 s in and
        # resolves at its end. The group speaks at most once per 300 s and then says how
        # things are right then: +300 firing; +600 resolved (the 2nd period, firing since
        # +540, ends at +600 too); +720..+840 fires and ends unseen (the group must wait
        # until +900, and is forgotten then); the 4th period fires at +1020; and so on.
        assert [(t, kind) for t, kind, _ in rig.sent] == [
            (300.0, "firing"), (600.0, "resolved"), (1020.0, "firing"), (1320.0, "resolved"),
            (1740.0, "firing"), (2040.0, "resolved"), (2460.0, "firing"), (2760.0, "resolved"),
            (3180.0, "firing"), (3480.0, "resolved")]
        assert len(rig.sent) <= 1 + 3600 / rig.settings.group_interval
        gaps = [b[0] - a[0] for a, b in zip(rig.sent, rig.sent[1:], strict=False)]
        assert min(gaps) >= rig.settings.group_interval
        assert len(telegram_texts(tg)) == len(rig.sent)
    finally:
        rig.close()
        squid.close()


def test_telegram_429_is_honoured_and_messages_are_paced(tmp_path: Path) -> None:
    """The fake API answers 429 retry_after=1 once: the message is sent again after at least
    1 s; two messages to one chat are at least min_interval (1 s) apart."""
    with http_endpoint({"ok": True, "result": {}}) as tg, http_endpoint({}) as hook:
        tg.answers.append((429, {"ok": False, "error_code": 429,
                                 "description": "Too Many Requests: retry after 1",
                                 "parameters": {"retry_after": 1}}, {}))
        dead = {"probes": {name: {"address": "127.0.0.1", "squid_port": free_port(),
                                  "ssh_port": False, "icmp": False} for name in ("a", "b")}}
        rig = Rig(tmp_path, tg, hook, {"group_wait": 0, "group_by": ["rule", "proxy"], **dead},
                  tg_min_interval=1.0)
        try:
            rig.run_until(70)
            rig.service.wait_delivered()
            # probed first at +5: pending, firing 60 s later
            assert [(t, k) for t, k, _ in rig.sent] == [(65.0, "firing"), (65.0, "firing")]
            got = tg.received
            assert [r.body["text"].splitlines()[0] for r in got] == [
                "[FIRING] Proxy unreachable: a", "[FIRING] Proxy unreachable: a",
                "[FIRING] Proxy unreachable: b"]
            assert got[1].at - got[0].at >= 1.0  # retry_after honoured
            assert got[2].at - got[1].at >= 1.0  # one message a second per chat
            rows = rig.db.execute("SELECT title, status, attempts FROM alert_notifications "
                                  "WHERE channel = 'telegram' ORDER BY id")
            assert rows == [("[FIRING] Proxy unreachable: a", "sent", 2),
                            ("[FIRING] Proxy unreachable: b", "sent", 1)]
        finally:
            rig.close()


def test_monitor_restart_mid_alert_sends_no_storm(
        tmp_path: Path, endpoints: tuple[HttpRecorder, HttpRecorder]) -> None:
    """Restarts while firing resume the saved state: no new message, the repeat comes
    4 h after the first; a message decided but not delivered before a restart is sent
    after it, once."""
    tg, hook = endpoints
    listeners = {"p1": Listener(), "p2": Listener()}
    rig = Rig(tmp_path, tg, hook, {"probes": probes(listeners)})
    try:
        listeners["p1"].close()
        rig.run_until(100)
        assert [(t, k) for t, k, _ in rig.sent] == [(65.0, "firing")]  # probed first at +5
        rig.restart()
        rig.run_until(200)
        rig.restart()
        rig.run_until(3 * 3600)
        assert [(t, k) for t, k, _ in rig.sent] == [(65.0, "firing")]
        # the webhook receiver fails for a while: the message stays queued across a restart
        hook.answers.extend([(500, {}, {})] * 3)
        rig.run_until(4 * 3600 + 70)
        assert [(t, k) for t, k, _ in rig.sent] == [(65.0, "firing"), (4 * 3600 + 65, "repeat")]
        deadline = time.monotonic() + 30  # the repeat reached Telegram; the webhook failed once
        while len(telegram_texts(tg)) < 2 or len(hook.received) < 2:
            assert time.monotonic() < deadline, "the repeat was not tried within 30 s"
            time.sleep(0.01)
        rig.service.close()  # restart while the webhook is between two tries
        assert rig.db.execute("SELECT channel, status FROM alert_notifications WHERE "
                              "kind = 'repeat' ORDER BY id") == [("telegram", "sent"),
                                                                 ("webhook", "queued")]
        rig.service = rig.start()
        rig.service.wait_delivered(timeout=60)
        bodies = webhook_checked(hook, SECRET)
        # three tries answered 500 (before and after the restart), the fourth accepted
        assert [b["kind"] for b in bodies] == ["firing", "repeat", "repeat", "repeat", "repeat"]
        assert len({b["at"] for b in bodies[1:]}) == 1  # one message, tried four times
        assert telegram_texts(tg)[1].startswith("[STILL FIRING] Proxy unreachable: p1\n")
        assert len(telegram_texts(tg)) == 2
        statuses = rig.db.execute("SELECT kind, channel, status FROM alert_notifications "
                                  "ORDER BY id")
        assert statuses == [("firing", "telegram", "sent"), ("firing", "webhook", "sent"),
                            ("repeat", "telegram", "sent"), ("repeat", "webhook", "sent")]
    finally:
        rig.close()
        for lst in listeners.values():
            lst.close()


def test_silence_mutes_until_it_expires(tmp_path: Path,
                                        endpoints: tuple[HttpRecorder, HttpRecorder]) -> None:
    from squidguard_bloom.monitor.alerts import store

    tg, hook = endpoints
    squid = Listener()
    rig = Rig(tmp_path, tg, hook, {"probes": probes({"p1": squid})})
    try:
        store.add_silence(rig.db, "unreachable", "p*", T0, T0 + 600, T0, "test", "maintenance")
        squid.close()
        rig.run_until(590)
        assert rig.sent == []
        rig.run_until(700)  # the silence ended at +600: a first message, group_wait counted
        assert [(t, k) for t, k, _ in rig.sent] == [(630.0, "firing")]
    finally:
        rig.close()
        squid.close()
