"""The sdist carries everything needed to rebuild, and its wheel has the extension."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_sdist_rebuilds_into_a_wheel_with_the_extension(tmp_path: Path) -> None:
    """python -m build: sdist first, then a wheel built from that sdist alone."""
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for needed in ("build_ext.py", "setup.py", "csrc/bloom.c", "csrc/bloom.h",
                   "csrc/murmur3.c", "csrc/murmur3.h", "pyproject.toml"):
        assert needed in names, f"sdist lacks {needed}"
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as whl:
        files = whl.namelist()
    assert any(f.startswith("squidguard_bloom/native/_bloom") and f.endswith(".so") for f in files)
    assert "squidguard_bloom/py.typed" in files
    for dialect in ("sqlite", "postgresql"):  # the monitor's migrations, read at run time
        assert f"squidguard_bloom/monitor/schema/{dialect}/0001_initial.sql" in files
    assert "squidguard_bloom/monitor/squidguard-bloom-monitor-ingest.service" in files
    web = "squidguard_bloom/monitor/web/"
    for needed in ("templates/layout.html", "static/dashboard.js", "static/app.css",
                   "static/vendor/uplot/uPlot.iife.min.js", "static/vendor/uplot/LICENSE",
                   "squidguard-bloom-monitor-serve.service"):
        assert web + needed in files, f"wheel lacks {web + needed}"
    for dialect in ("sqlite", "postgresql"):
        assert f"squidguard_bloom/monitor/schema/{dialect}/0003_dashboard_rollups.sql" in files
