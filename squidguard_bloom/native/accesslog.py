"""The monitor's access.log scanner (csrc/accesslog.h): a piece of lines per C call.

:func:`scan` hands C a piece's raw bytes and returns plain Python lists:
for each line whether C read it ("fast") and its numbers, and nine text
fields a line (empty ones for a slow line) in the order
:data:`FIELDS` names. monitor/parse.py reads the slow lines itself. No cffi
object leaves this module.
"""

from __future__ import annotations

from squidguard_bloom.native import _bloom
from squidguard_bloom.records import Record

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from typing import Any

_ffi: Any = _bloom.ffi
_lib: Any = _bloom.lib
_new: Any = _ffi.new_allocator(should_clear_after_alloc=False)  # C writes every byte it hands back

#: The text fields :func:`scan` returns for each line, in order (host: lower-cased).
FIELDS = ("client", "result", "method", "url", "ident", "hierarchy", "peer", "mime", "host")


class Scanned(Record):
    """What :func:`scan` read: one entry a line in fast (1: read by C, 0: slow), ts, elapsed,
    status and size (0 on slow lines); len(FIELDS) strings a line in fields (empty on slow
    lines; one extra empty string at the end)."""

    fast: list[int]
    ts: list[float]
    elapsed: list[int]
    status: list[int]
    size: list[int]
    fields: list[str]


def scan(data: bytes, lines: int) -> Scanned:
    """Scan data's first lines lines (separated by ``\\n``; the last may lack its newline)."""
    n = max(lines, 1)
    fast = _new("uint8_t[]", n)
    ts = _new("double[]", n)
    elapsed = _new("int64_t[]", n)
    status = _new("int64_t[]", n)
    size = _new("int64_t[]", n)
    cap = 2 * len(data) + 9 * lines + 16
    out = _new("uint8_t[]", cap)
    used = _lib.sgb_al_scan(_ffi.from_buffer("uint8_t[]", data), len(data), lines, fast, ts,
                            elapsed, status, size, out, cap)
    if used < 0:  # cannot happen: cap is what the header promises is enough
        raise RuntimeError("sgb_al_scan: output buffer too small")
    return Scanned(
        memoryview(_ffi.buffer(fast, lines)).tolist(),
        memoryview(_ffi.buffer(ts, 8 * lines)).cast("d").tolist(),  # type: ignore[arg-type]
        memoryview(_ffi.buffer(elapsed, 8 * lines)).cast("q").tolist(),
        memoryview(_ffi.buffer(status, 8 * lines)).cast("q").tolist(),
        memoryview(_ffi.buffer(size, 8 * lines)).cast("q").tolist(),
        str(_ffi.buffer(out, used), "ascii").split(" "),
    )
