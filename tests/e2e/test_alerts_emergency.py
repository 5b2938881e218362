"""End to end: helpers under the real Squid fall into emergency mode, their status lines
go through the monitor's ingest, and the emergency rule sends one message to a webhook
receiver on 127.0.0.1 (the real clock; no fake parts)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from squidguard_bloom.monitor.alerts.service import AlertService
from squidguard_bloom.monitor.alerts.settings import parse
from squidguard_bloom.monitor.ingest import Ingest
from squidguard_bloom.monitor.migrate import open_database
from squidguard_bloom.monitor.parse import Clock
from tests.monitor.alertkit import http_endpoint, webhook_checked

from .harness import chown_tree, fetch, origin_server, proxy_dir, run_squid

CHILDREN = 3
BROKEN = """\
dbhome {dir}/db
logdir {dir}/logs
acl {{
    default {{
        pass all
        oops {{
    }}
}}
"""


def test_emergency_mode_under_squid_reaches_the_webhook(installed: Path, tmp_path: Path) -> None:
    work = proxy_dir("sgb-alert-e2e-")
    try:
        (work / "db").mkdir()
        (work / "logs").mkdir()
        (work / "squidGuard.conf").write_text(BROKEN.format(dir=work))
        chown_tree(work)
        secret = tmp_path / "secret"
        secret.write_text("e2e-secret\n")
        with origin_server() as origin, http_endpoint({}) as hook, \
                run_squid(work, installed, work / "squidGuard.conf", ["site.test"],
                          children=CHILDREN) as sq:
            pids = sq.wait_for_helpers(CHILDREN)
            main_log = work / "logs" / "squidGuard.log"
            deadline = time.monotonic() + 30
            while not (main_log.exists() and all(
                    f"[{pid}] INFO: status: " in main_log.read_text() for pid in pids)):
                assert time.monotonic() < deadline, f"no status lines: {sq.cache_log()[-2000:]}"
                time.sleep(0.1)
            # emergency pass: the request goes through unfiltered
            got = fetch(sq.port, f"http://site.test:{origin}/x", "127.0.0.9")
            assert got.code == 200 and got.body.startswith("origin GET site.test")
            # the monitor reads the helper's squidGuard.log as the shipper would deliver it
            incoming = tmp_path / "incoming" / "edge-1" / "squidGuard"
            incoming.mkdir(parents=True)
            os.link(main_log, incoming / "00000001-1-1.log")
            db = open_database(str(tmp_path / "monitor.db"))
            settings = parse({"group_wait": 0, "channels": [
                {"type": "webhook", "url": hook.url + "/hook", "secret_file": str(secret)}]},
                tz="UTC")
            ingest = Ingest(db, proxies={"edge-1": tmp_path / "incoming" / "edge-1"},
                            clock=Clock(None))  # the helper stamps local time
            service = AlertService(db, settings, background=False)
            try:
                deadline = time.monotonic() + 30
                sent = []
                while not sent:
                    assert time.monotonic() < deadline, "no alert within 30 s"
                    ingest.run_pass()
                    sent = service.evaluate(time.time())
                    time.sleep(0.2)
                service.wait_delivered()
                bodies = webhook_checked(hook, b"e2e-secret")
                assert [(b["kind"], b["title"]) for b in bodies] == [
                    ("firing", "[FIRING] Helper in emergency mode: edge-1")]
                assert [(a["proxy"], a["summary"]) for a in bodies[0]["alerts"]] == [
                    ("edge-1", f"{CHILDREN} helper processes in emergency mode (pass: passing "
                               "everything unfiltered)")]
                assert bodies[0]["text"].endswith(
                    "What to do: the helper could not load its configuration: run "
                    "squidguard-bloom --check on the proxy, fix what it names, then squid -k "
                    "reconfigure.")
                events = db.execute("SELECT pid, kind FROM events WHERE kind = 'emergency' "
                                    "ORDER BY pid")
                assert events == [(pid, "emergency") for pid in sorted(pids)]
            finally:
                service.close()
                db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
