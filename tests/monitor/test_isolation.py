"""The helper and the shipper never load the monitor or its database drivers."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("squidguard_bloom.monitor", "sqlite3", "psycopg", "mirakuru", "zoneinfo")


def _imported(stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_running_the_helper_loads_nothing_of_the_monitor() -> None:
    """The helper serving requests (welcome, pass, block) under -X importtime."""
    lines = (b"http://www.example.com/ 192.168.5.20/- - GET\n"
             b"http://www.example.com/x 192.168.5.20/- - GET\n"
             b"http://ads.example.com/banner.gif 192.168.5.20/- - GET\n")
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c",
         "from squidguard_bloom.helper.cli import command; command()", "--example"],
        input=lines, capture_output=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(out.stdout.splitlines()) == 3
    names = _imported(out.stderr.decode())
    assert "squidguard_bloom.helper.loop" in names  # the probe sees the helper's own imports
    assert not {n for n in names if n.startswith(FORBIDDEN)}


def test_importing_the_shipper_loads_nothing_of_the_monitor() -> None:
    probe = ("import sys, squidguard_bloom.shipper.cli; "
             f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
