"""``squidguard-bloom-monitor demo``: three proxies' generated traffic, ingested and served."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.servers import free_port

from .servers import Client, Process, wait_port


def test_demo_serves_three_proxies_with_live_traffic(tmp_path: Path) -> None:
    port = free_port()
    demo = Process(["demo", "--dir", str(tmp_path / "demo"), "--hours", "1", "--port",
                    str(port)], tmp_path / "demo.log")
    try:
        wait_port(port, demo, timeout=120)
        m = re.search(r"^log in as demo / (\S+)$", demo.output(), re.M)
        assert m is not None, demo.output()
        c = Client(f"http://127.0.0.1:{port}")
        assert c.login("demo", m.group(1))[0] == 303
        first = json.loads(c.request("/api/overview?range=1h")[2])
        tiles = {t["proxy"]: t for t in first["tiles"]}
        assert sorted(tiles) == ["proxy-east", "proxy-north", "proxy-south"]
        assert tiles["proxy-east"]["helper"]["kind"] == "emergency"
        assert tiles["proxy-north"]["helper"]["kind"] == "ready"
        assert all(t["requests_hour"] > 0 and t["blocks_hour"] > 0 for t in tiles.values())
        newest = max(t["last_line_ts"] for t in tiles.values())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # new lines keep arriving
            later = json.loads(c.request("/api/overview?range=1h")[2])
            if max(t["last_line_ts"] for t in later["tiles"]) > newest:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("no new line in 30 s")
    finally:
        demo.stop()
    assert demo.proc.returncode == 0, demo.output()
