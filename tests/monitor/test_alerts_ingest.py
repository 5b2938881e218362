"""`squidguard-bloom-monitor ingest` with an [alerts] table evaluates the rules between its
passes: a helper's emergency status line written into a proxy's incoming directory comes out
as one signed webhook message, and SIGTERM stops ingest, prober and channels cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from squidguard_bloom.monitor.migrate import open_database
from tests.monitor.alertkit import ProxyLogs, http_endpoint, webhook_checked


def test_ingest_runs_the_alerts(tmp_path: Path) -> None:
    logs = ProxyLogs(tmp_path / "incoming", "edge-7")
    secret = tmp_path / "secret"
    secret.write_text("ingest-secret\n")
    db = tmp_path / "m.db"
    with http_endpoint({}) as hook:
        conf = tmp_path / "monitor.toml"
        conf.write_text(f'''db = "{db}"
tz = "UTC"
poll_interval = 0.2

[proxies]
edge-7 = "{logs.dir}"

[alerts]
evaluation_interval = "1s"
group_wait = "1s"

[[alerts.channels]]
type = "webhook"
url = "{hook.url}/hook"
secret_file = "{secret}"
''')
        proc = subprocess.Popen([sys.executable, "-m", "squidguard_bloom.monitor", "--config",
                                 str(conf), "ingest"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            logs.status(time.time(), emergency="block", pid=77)
            deadline = time.monotonic() + 30
            while not hook.received:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "no webhook message within 30 s"
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        bodies = webhook_checked(hook, b"ingest-secret")
        assert [(b["kind"], b["title"]) for b in bodies] == [
            ("firing", "[FIRING] Helper in emergency mode: edge-7")]
        assert bodies[0]["alerts"][0]["summary"] == (
            "1 helper process in emergency mode (block: blocking everything)")
        assert "alert firing: [FIRING] Helper in emergency mode: edge-7" in err
    with open_database(str(db)) as d:
        assert d.execute("SELECT kind, channel, status FROM alert_notifications") == [
            ("firing", "webhook", "sent")]


def test_alerts_test_command_reports_each_channel(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("k\n")
    with http_endpoint({}) as refusing, http_endpoint({}) as hook:
        refusing.answers.append((403, {}, {}))
        conf = tmp_path / "monitor.toml"
        conf.write_text(f'''db = "{tmp_path / 'm.db'}"
[alerts]
[[alerts.channels]]
type = "webhook"
name = "refused"
url = "{refusing.url}/a"
secret_file = "{secret}"
[[alerts.channels]]
type = "webhook"
name = "ok"
url = "{hook.url}/b"
secret_file = "{secret}"
''')
        r = subprocess.run([sys.executable, "-m", "squidguard_bloom.monitor", "--config",
                            str(conf), "alerts", "test"], capture_output=True, text=True,
                           timeout=60, check=False)
    assert r.returncode == 1
    lines = sorted(r.stdout.splitlines())
    assert lines == ["ok: sent", f"refused: failed: webhook {refusing.url}/a: HTTP 403"]
    assert [b["kind"] for b in webhook_checked(hook, b"k")] == ["test"]
    assert [b["kind"] for b in webhook_checked(refusing, b"k")] == ["test"]  # tried once
