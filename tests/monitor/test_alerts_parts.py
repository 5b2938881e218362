"""The alerts' parts one by one: settings, probes, signatures, rules over both databases,
the saved state, silences and the commands."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from squidguard_bloom.monitor.alerts import store
from squidguard_bloom.monitor.alerts.channels import verify_signature
from squidguard_bloom.monitor.alerts.engine import Engine
from squidguard_bloom.monitor.alerts.probes import icmp_probe, tcp_probe
from squidguard_bloom.monitor.alerts.rules import (
    Context,
    Finding,
    blocks_spike,
    emergency,
    shipper_lag,
    unparsed,
    welcome_filter,
)
from squidguard_bloom.monitor.alerts.settings import parse
from squidguard_bloom.monitor.errors import MonitorConfigError
from squidguard_bloom.monitor.migrate import open_database

NOW = 1_800_000_000.0


def test_defaults() -> None:
    s = parse({})
    assert (s.group_wait, s.group_interval, s.repeat_interval) == (30.0, 300.0, 14400.0)
    assert s.group_by == ["rule"] and s.channels == [] and s.probes == {}
    assert [(i.source, i.targets, i.equal) for i in s.inhibit] == [
        ("unreachable", ["silent", "shipper_lag"], ["proxy"])]
    assert (s.rules["silent"]["after"], s.rules["silent"].for_) == (180.0, 120.0)
    assert s.rules["blocks_spike"].params == {"window": 3600.0, "factor": 3.0, "weeks": 4,
                                              "min_blocks": 100}
    assert s.rules["blocks_spike"].interval == 60.0
    s = parse({"group_wait": "1m", "rules": {"silent": {"after": "10m", "for": 0,
                                                         "enabled": False}}})
    assert (s.group_wait, s.rules["silent"]["after"], s.rules["silent"].for_) == (60, 600, 0)
    assert s.rules["silent"].enabled is False


@pytest.mark.parametrize(("table", "message"), [
    ({"rules": {"silnet": {}}}, "[alerts.rules.silnet]: no such rule (rules: silent, "
     "unreachable, shipper_lag, emergency, welcome_filter, blocks_spike, unparsed)"),
    ({"group_wait": "soon"}, "[alerts] group_wait: 'soon' is not a duration; write seconds "
     "or a string such as \"30s\", \"5m\", \"4h\", \"2d\""),
    ({"rules": {"silent": {"aftr": 1}}}, "[alerts.rules.silent]: unknown key 'aftr' (known: "
     "after, enabled, for, forget_after, interval, keep_firing_for)"),
    ({"channels": [{"type": "sms"}]}, "[[alerts.channels]] #1: type must be \"telegram\", "
     "\"webhook\" or \"email\", not 'sms'"),
    ({"channels": [{"type": "webhook", "url": "http://127.0.0.1/"}]},
     "[[alerts.channels]] webhook: missing secret_file"),
    ({"probes": {"p1": {"squid_port": 3128}}}, "[alerts.probes.p1]: 'address' (the proxy's IP "
     "address or host name) is required"),
    ({"probes": {"p1": {"address": "127.0.0.1", "ssh_port": 70000}}},
     "[alerts.probes.p1] ssh_port: write a TCP port (1-65535) or false"),
    ({"colour": 1}, "[alerts]: unknown key 'colour'; see docs/alerts.md"),
])
def test_bad_settings_name_the_key(table: dict, message: str) -> None:
    with pytest.raises(MonitorConfigError) as err:
        parse(table)
    assert str(err.value) == message


def test_tcp_probe_on_loopback() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        port = s.getsockname()[1]
        assert tcp_probe("127.0.0.1", port, 2.0) == "ok"
    assert tcp_probe("127.0.0.1", port, 2.0) == "refused"


def test_icmp_probe_on_loopback() -> None:
    result = icmp_probe("127.0.0.1", 2.0)
    if os.geteuid() == 0:
        assert result == "ok"  # a raw socket, as root
    else:
        assert result in ("ok", "not permitted")


def test_webhook_signature() -> None:
    import hashlib
    import hmac

    body = b'{"kind":"firing"}'
    mac = hmac.new(b"s3cret", b"1800000000." + body, hashlib.sha256).hexdigest()
    assert verify_signature(b"s3cret", "1800000000", body, f"sha256={mac}")
    assert not verify_signature(b"s3cret", "1800000001", body, f"sha256={mac}")
    assert not verify_signature(b"other", "1800000000", body, f"sha256={mac}")
    assert not verify_signature(b"s3cret", "1800000000", body + b" ", f"sha256={mac}")


def test_email_over_starttls_and_its_failures(tmp_path: Path) -> None:
    """Delivered over STARTTLS; a refused recipient is permanent (no retry); a server that
    is not there is temporary (retried by the worker)."""
    from squidguard_bloom.monitor.alerts.channels import DeliveryError, EmailSender, Message
    from squidguard_bloom.monitor.alerts.settings import Channel
    from tests.monitor.alertkit import free_port, smtp_server

    msg = Message(1, "[FIRING] Proxy silent: p1", "p1: no line received", {}, 0.0)
    with smtp_server(tmp_path) as (box, ca):
        box.refuse.add("gone@example.org")
        options = {"host": "127.0.0.1", "port": box.port, "ca_file": str(ca),
                   "sender": "m@example.org", "to": ["noc@example.org"]}
        EmailSender(Channel("mail", "email", options)).send(msg)
        assert box.tls == [True]
        assert box.mails[0][:2] == ("m@example.org", ["noc@example.org"])
        assert "Subject: [FIRING] Proxy silent: p1" in box.mails[0][2]
        assert "p1: no line received" in box.mails[0][2]
        refused = EmailSender(Channel("mail", "email", {**options, "to": ["gone@example.org"]}))
        with pytest.raises(DeliveryError) as err:
            refused.send(msg)
        assert err.value.permanent is True
        assert str(err.value).startswith("e-mail via 127.0.0.1: refused: ")
    nobody = EmailSender(Channel("mail", "email", {**options, "port": free_port()}))
    with pytest.raises(DeliveryError) as err:
        nobody.send(msg)
    assert err.value.permanent is False
    assert str(err.value).startswith(f"e-mail via 127.0.0.1:{nobody.port}: ")


def _proxy(db, name: str) -> int:
    return int(db.scalar("INSERT INTO proxies (name, first_seen, last_received) VALUES "
                         "(?, ?, ?) RETURNING id", (name, NOW - 86400, NOW)))


def _event(db, proxy_id: int, ts: float, origin: str, kind: str, message: str,
           pid: int | None = 100) -> None:
    db.execute("INSERT INTO events (proxy_id, stream_id, ts, origin, pid, level, kind, message) "
               "VALUES (?, 1, ?, ?, ?, 'INFO', ?, ?)", (proxy_id, ts, origin, pid, kind, message))


STATUS = ("status: answered=9 blocks=1 welcomes=1 filter={filt} fpr={fpr} target=0.001 "
          "over_capacity={over} emergency={mode} uptime=60 interval=60")


def test_rules_over_events_on_both_dialects(db_url: str) -> None:
    rules = parse({}).rules
    with open_database(db_url) as db:
        a, b, c = _proxy(db, "a"), _proxy(db, "b"), _proxy(db, "c")
        ok = STATUS.format(filt="10/1000", fpr="1e-20", over="no", mode="no")
        _event(db, a, NOW - 30, "helper", "status", STATUS.format(
            filt="-", fpr="-", over="no", mode="pass"), pid=1)
        _event(db, a, NOW - 20, "helper", "status", STATUS.format(
            filt="-", fpr="-", over="no", mode="pass"), pid=2)
        _event(db, b, NOW - 400, "helper", "status", STATUS.format(  # too old: ignored
            filt="-", fpr="-", over="no", mode="block"), pid=3)
        _event(db, b, NOW - 20, "helper", "status", STATUS.format(
            filt="1001/1000", fpr="0.0012", over="yes", mode="no"), pid=4)
        _event(db, c, NOW - 50, "helper", "status", STATUS.format(
            filt="-", fpr="-", over="no", mode="block"), pid=5)
        _event(db, c, NOW - 10, "helper", "stopped", "squidguard-bloom stopped (1.0)", pid=5)
        _event(db, c, NOW - 10, "helper", "status", ok, pid=6)
        _event(db, a, NOW - 15, "shipper", "status",
               "status: link up; squidGuard: 10 lines / 900 bytes shipped, 0 bytes behind, "
               "lag 0.0 s; access: 5 lines / 500 bytes shipped, 4000 bytes behind, lag 300.0 s",
               pid=None)
        _event(db, b, NOW - 15, "shipper", "status", "status: link down [fault=refused]",
               pid=None)
        _event(db, c, NOW - 15, "shipper", "status", "status: link up; squidGuard: 1 lines / "
               "9 bytes shipped, 0 bytes behind, lag 0.0 s", pid=None)
        ctx = Context(db, NOW, {}, NOW - 3600)
        assert emergency(ctx, rules["emergency"]) == {"a": Finding(
            "2 helper processes in emergency mode (pass: passing everything unfiltered)")}
        assert welcome_filter(ctx, rules["welcome_filter"]) == {"b": Finding(
            "welcome filter 1001/1000 entries (OVER CAPACITY), estimated false-positive rate "
            "0.0012 (target 0.001)")}
        assert shipper_lag(ctx, rules["shipper_lag"]) == {
            "a": Finding("shipper access 300 s behind (4000 bytes)"),
            "b": Finding("shipper link down [fault=refused]")}


def test_blocks_spike_and_unparsed_over_rollups_on_both_dialects(db_url: str) -> None:
    rules = parse({}).rules
    week = 7 * 86400
    with open_database(db_url) as db:
        a, b, c = _proxy(db, "a"), _proxy(db, "b"), _proxy(db, "c")
        end = NOW - NOW % 60
        rows = []
        lines = []
        for minute in range(int(end - 3600), int(end), 60):
            rows += [(minute, a, "porn", "REDIRECT", 10), (minute, b, "porn", "REDIRECT", 3),
                     (minute, c, "ads", "REDIRECT", 1)]
            for k in (1, 2):  # two weeks of history: a blocked 2/min then, b 1/min
                rows += [(minute - k * week, a, "porn", "REDIRECT", 2),
                         (minute - k * week, b, "porn", "REDIRECT", 1)]
                lines += [(minute - k * week, p, "helper", 50, 0) for p in (a, b)]
        lines += [(int(end - 60), a, "access", 900, 30), (int(end - 60), b, "access", 900, 5)]
        with db.transaction():
            db.insert_rows("rollup_decisions", ("minute", "proxy_id", "target", "action", "n"),
                           rows)
            db.insert_rows("rollup_lines", ("minute", "proxy_id", "kind", "lines", "unparsed"),
                           lines)
        ctx = Context(db, NOW, {}, NOW - 3600)
        # a: 600 blocks against a baseline of 120 (5x); b: 180 against 60 (exactly 3x: no);
        # c: no history at all, so no baseline
        assert blocks_spike(ctx, rules["blocks_spike"]) == {"a": Finding(
            "600 blocks in the last 60 min, baseline 120 (same time, 2 previous weeks)")}
        assert unparsed(ctx, rules["unparsed"]) == {"a": Finding(
            "30 unparsed lines of 930 in the last 15 min")}


def test_engine_state_and_silences_survive_on_both_dialects(db_url: str) -> None:
    settings = parse({})
    with open_database(db_url) as db:
        engine = Engine(settings)
        changes, out = engine.step(NOW, {"emergency": {"p1": Finding("2 helpers", NOW - 5)}})
        assert [(c.rule, c.to_state) for c in changes] == [("emergency", "firing")]
        assert out == []  # group_wait
        changes, out = engine.step(NOW + 30, {"emergency": {"p1": Finding("2 helpers")}})
        assert [(m.kind, [a.key for a in m.firing]) for m in out] == [
            ("firing", ["emergency/p1"])]
        with db.transaction():
            store.save(db, engine, changes)
        again = Engine(settings)
        store.load(db, again, NOW + 30)
        assert again.alerts == engine.alerts and again.groups == engine.groups
        sid = store.add_silence(db, "*", "p*", NOW, NOW + 60, NOW, "me", "work")
        store.load_silences(db, again, NOW + 30)
        assert [(s.id, s.proxy, s.comment) for s in again.silences] == [(sid, "p*", "work")]
        assert store.expire_silence(db, sid, NOW + 40) is True
        assert store.expire_silence(db, sid, NOW + 41) is False
        store.load_silences(db, again, NOW + 41)
        assert again.silences == []


def _monitor(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "squidguard_bloom.monitor", "--db", str(db),
                           *args], capture_output=True, text=True, timeout=60, check=False)


def test_silence_and_alerts_commands(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    r = _monitor(db, "silence", "add", "--rule", "silent", "--proxy", "edge-*", "--for", "2h",
                 "--comment", "router swap", "--author", "noc")
    assert r.returncode == 0 and r.stdout.startswith("silence #1: silent on edge-* until ")
    listed = json.loads(_monitor(db, "silence", "list", "--json").stdout)
    assert [(s["id"], s["rule"], s["proxy"], s["author"], s["comment"]) for s in listed] == [
        (1, "silent", "edge-*", "noc", "router swap")]
    assert listed[0]["ends"] - listed[0]["starts"] == 7200
    shown = json.loads(_monitor(db, "alerts", "--json").stdout)
    assert (shown["alerts"], len(shown["silences"])) == ([], 1)
    r = _monitor(db, "silence", "add", "--rule", "nope")
    assert (r.returncode, r.stderr) == (78, "squidguard-bloom-monitor: --rule 'nope': no such "
                                            "rule (rules: silent, unreachable, shipper_lag, "
                                            "emergency, welcome_filter, blocks_spike, unparsed, "
                                            "or *)\n")
    assert _monitor(db, "silence", "expire", "1").stdout == "silence #1 expired\n"
    r = _monitor(db, "silence", "expire", "1")
    assert (r.returncode, r.stderr) == (1, "no live silence #1\n")
    r = _monitor(db, "alerts", "test")
    assert (r.returncode, r.stderr) == (1, "no channel configured: add [[alerts.channels]] "
                                           "(see docs/alerts.md)\n")


def test_documented_configuration_loads(tmp_path: Path) -> None:
    """The complete configuration of docs/alerts.md is valid as it stands."""
    from squidguard_bloom.monitor import config as monitor_config
    from squidguard_bloom.monitor.alerts.cli import alert_settings_of

    doc = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
    section = doc.split("## A complete configuration", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    conf = tmp_path / "monitor.toml"
    conf.write_text(example)
    s = alert_settings_of(monitor_config.load(conf))
    assert [(c.name, c.kind) for c in s.channels] == [
        ("telegram", "telegram"), ("webhook", "webhook"), ("email", "email")]
    assert sorted(s.probes) == ["proxy-a", "proxy-b"]
    assert (s.probes["proxy-b"].squid_port, s.probes["proxy-b"].ssh_port) == (3128, 22)
    defaults = parse({})
    for name, rule in s.rules.items():  # every value shown is the default
        assert (rule.params, rule.for_, rule.interval) == (
            defaults.rules[name].params, defaults.rules[name].for_,
            defaults.rules[name].interval), name
    for key in ("evaluation_interval", "probe_interval", "probe_timeout", "group_wait",
                "group_interval", "repeat_interval", "group_by", "queue_size",
                "max_attempts", "max_age"):
        assert getattr(s, key) == getattr(defaults, key), key


def test_tick_evaluates_when_due_or_soon_after_news(tmp_path: Path) -> None:
    """tick(): every evaluation_interval; news (fresh lines) at most once a second but never
    forgotten; a group or a pending alert that is due is evaluated at its time."""
    from squidguard_bloom.monitor.alerts.service import AlertService
    from tests.monitor.alertkit import FakeClock

    clock = FakeClock(NOW)
    with open_database(str(tmp_path / "m.db")) as db:
        service = AlertService(db, parse({"evaluation_interval": 600, "group_wait": 120}),
                               clock=clock, background=False)
        try:
            def ticks(*steps: tuple[float, bool]) -> list[int]:
                out = []
                for dt_, fresh in steps:
                    clock.t += dt_
                    before = service.evaluations
                    service.tick(fresh=fresh)
                    out.append(service.evaluations - before)
                return out

            assert ticks((0, False)) == [1]  # the first tick evaluates
            # news 0.5 s later waits for the 1 s gap, then goes through without a new flag
            assert ticks((0.5, True), (0.3, False), (0.3, False), (0.5, False)) == [0, 0, 1, 0]
            assert ticks((100, False)) == [0]  # nothing new, nothing due
            # a pending alert (for 60 s; its group waits 120 s) is evaluated when it is due
            service.engine.step(clock.t, {"unreachable": {"p": Finding("x", observed=clock.t)}})
            assert service.engine.next_due() == clock.t + 60
            assert ticks((59.9, False), (0.2, False)) == [0, 1]
        finally:
            service.close()
