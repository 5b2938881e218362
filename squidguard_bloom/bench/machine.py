"""What a benchmark ran on: stamped into every JSON result and table heading."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def describe() -> dict[str, Any]:
    """Date (UTC), CPU, cores, memory, OS and Python of this run."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "mem_gib": _mem_total_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def heading(info: dict[str, Any]) -> str:
    """One line for the top of a table."""
    mem = info.get("mem_gib")
    mem_text = f", {mem:.1f} GiB" if mem else ""
    load = info.get("load")
    load_text = f", load {load:.2f} at start" if load is not None else ""
    return (
        f"# {info['date']}: {info['cpus']} CPU ({info['cpu']}){mem_text}, {info['os']}, "
        f"Python {info['python']}{load_text}"
    )
