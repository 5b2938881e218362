"""The C sources keep the one style of .clang-format."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.servers import need

ROOT = Path(__file__).resolve().parent.parent


def test_csrc_is_formatted_by_its_clang_format() -> None:
    """clang-format changes nothing in csrc/ (run `clang-format -i csrc/*.[ch]` to fix)."""
    sources = sorted(str(p) for p in (ROOT / "csrc").glob("*.[ch]"))
    out = subprocess.run([need("clang-format"), "--dry-run", "--Werror", *sources],
                         capture_output=True, text=True, check=False, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
