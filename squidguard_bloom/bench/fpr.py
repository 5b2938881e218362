"""False-positive rate and speed of our filter next to its peers, while it fills.

For each capacity, error rate and key kind, every available implementation
is filled step by step up to twice its capacity; after each step the
false-positive rate is measured on keys that were never inserted, next to
the formula (1 - e^(-kn/m))^k for that implementation's own m and k.
Inserts/s and lookups/s are single calls from a Python loop (the way the
helper calls the filter), except for the ``ours (batch)`` row.

Keys are built once per kind from a seeded generator and handed as
``bytes`` to every implementation, so all of them see the same keys;
addresses go through :func:`squidguard_bloom.core.keys.address_key`, exactly as
the helper turns a client into a key.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import ipaddress
import math
import random
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from squidguard_bloom.bench.progress import Progress
from squidguard_bloom.bench.table import Column, count, fixed, format_table, human, percent, text
from squidguard_bloom.core.keys import address_key
from squidguard_bloom.native.bloom import BloomFilter

KEY_KINDS = ("ipv4-random", "ipv4-seq", "ipv6", "string")
IMPLEMENTATIONS = ("ours", "ours-batch", "pybloom-live", "rbloom", "pybloomfiltermmap3", "libbloom")


# ---------------------------------------------------------------- keys


def _ipv4(rng: random.Random, total: int) -> Iterator[bytes]:
    for value in rng.sample(range(2**32), total):
        yield address_key(socket.inet_ntoa(value.to_bytes(4, "big")))


def _ipv4_seq(rng: random.Random, total: int) -> Iterator[bytes]:
    """Whole /24 blocks in a shuffled order, each handed out address by address."""
    blocks = rng.sample(range(2**24), -(-total // 256))
    base = 10 << 24  # start in 10.0.0.0/8; big runs wrap into the rest of the space
    produced = 0
    for block in blocks:
        start = (base + block * 256) % 2**32
        for host in range(256):
            if produced == total:
                return
            produced += 1
            yield address_key(socket.inet_ntoa((start + host).to_bytes(4, "big")))


def _ipv6(rng: random.Random, total: int) -> Iterator[bytes]:
    seen: set[int] = set()
    prefix = 0x20010DB8 << 96  # documentation prefix 2001:db8::/32
    while len(seen) < total:
        value = prefix | rng.getrandbits(96)
        if value not in seen:
            seen.add(value)
            yield address_key(str(ipaddress.IPv6Address(value)))


_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-._@"


def _strings(rng: random.Random, total: int) -> Iterator[bytes]:
    for i in range(total):
        word = "".join(rng.choices(_ALPHABET, k=rng.randint(4, 24)))
        yield f"{word}#{i}".encode()  # the index keeps every key distinct


_MAKERS: dict[str, Callable[[random.Random, int], Iterator[bytes]]] = {
    "ipv4-random": _ipv4,
    "ipv4-seq": _ipv4_seq,
    "ipv6": _ipv6,
    "string": _strings,
}


def make_keys(kind: str, inserted: int, queried: int, seed: int) -> tuple[list[bytes], list[bytes]]:
    """``inserted`` keys to add and ``queried`` distinct keys never added, for a key kind.

    For ``ipv4-seq`` the queried addresses are the /24 blocks handed out
    after the inserted ones: neighbours of inserted keys, the hard case for
    a weak hash.
    """
    if kind not in _MAKERS:
        msg = f"unknown key kind {kind!r}; choose from {', '.join(KEY_KINDS)}"
        raise ValueError(msg)
    keys = list(_MAKERS[kind](random.Random(f"{seed}:{kind}"), inserted + queried))
    return keys[:inserted], keys[inserted:]


# ---------------------------------------------------------------- implementations


@dataclass
class Impl:
    """One filter under test, behind single-call or batch add/check loops."""

    name: str
    version: str
    bits: int
    hashes: int | None
    nbytes: int
    add: Callable[[list[bytes]], object]
    positives: Callable[[list[bytes]], int]
    note: str = ""
    close: Callable[[], None] = lambda: None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _ours(capacity: int, p: float) -> Impl:
    f = BloomFilter(capacity, p)
    info = f.info()

    def add(keys: list[bytes]) -> None:
        a = f.add
        for k in keys:
            a(k)

    def positives(keys: list[bytes]) -> int:
        return sum(1 for k in keys if k in f)

    return Impl(
        "ours",
        _version("squidguard-bloom"),
        info.bits,
        info.hashes,
        info.bytes,
        add,
        positives,
        "single calls",
        f.close,
    )


def _ours_batch(capacity: int, p: float) -> Impl:
    f = BloomFilter(capacity, p)
    info = f.info()
    return Impl(
        "ours-batch",
        _version("squidguard-bloom"),
        info.bits,
        info.hashes,
        info.bytes,
        f.add_many,
        lambda keys: sum(f.contains_many(keys)),
        "add_many/contains_many",
        f.close,
    )


def _pybloom_live(capacity: int, p: float) -> Impl:
    f = importlib.import_module("pybloom_live").BloomFilter(capacity=capacity, error_rate=p)
    f.capacity = 2**62  # it raises IndexError at capacity; lift that to measure past it

    def add(keys: list[bytes]) -> None:
        a = f.add
        for k in keys:
            a(k)

    def positives(keys: list[bytes]) -> int:
        return sum(1 for k in keys if k in f)

    return Impl(
        "pybloom-live",
        _version("pybloom-live"),
        f.num_bits,
        f.num_slices,
        (f.num_bits + 7) // 8,
        add,
        positives,
        "raises IndexError at capacity (lifted here)",
    )


def _rbloom(capacity: int, p: float) -> Impl:
    f = importlib.import_module("rbloom").Bloom(capacity, p)
    bits = f.size_in_bits
    k = max(1, math.floor(bits / capacity * math.log(2)))  # not exposed; rbloom's own rule

    def add(keys: list[bytes]) -> None:
        a = f.add
        for key in keys:
            a(key)

    def positives(keys: list[bytes]) -> int:
        return sum(1 for key in keys if key in f)

    return Impl(
        "rbloom",
        _version("rbloom"),
        bits,
        k,
        (bits + 7) // 8,
        add,
        positives,
        "Python hash(): salted per process; k derived",
    )


def _pybloomfiltermmap3(capacity: int, p: float) -> Impl:
    f = importlib.import_module("pybloomfilter").BloomFilter(capacity, p)

    def add(keys: list[bytes]) -> None:
        a = f.add
        for key in keys:
            a(key)

    def positives(keys: list[bytes]) -> int:
        return sum(1 for key in keys if key in f)

    return Impl(
        "pybloomfiltermmap3",
        _version("pybloomfiltermmap3"),
        f.num_bits,
        f.num_hashes,
        (f.num_bits + 7) // 8,
        add,
        positives,
        "in memory",
    )


class _LibbloomStruct(ctypes.Structure):
    # struct bloom of libbloom 1.6 (Debian's libbloom-dev), public fields first.
    _fields_ = [
        ("entries", ctypes.c_int),
        ("error", ctypes.c_double),
        ("bits", ctypes.c_int),
        ("bytes", ctypes.c_int),
        ("hashes", ctypes.c_int),
        ("bpe", ctypes.c_double),
        ("bf", ctypes.c_void_p),
        ("ready", ctypes.c_int),
        ("_spare", ctypes.c_char * 64),  # room in case a build adds private fields
    ]


def _libbloom(capacity: int, p: float) -> Impl:
    path = ctypes.util.find_library("bloom")
    if path is None:
        msg = "libbloom.so not found (Debian: apt-get install libbloom-dev)"
        raise ImportError(msg)
    lib = ctypes.CDLL(path)
    version = "?"
    if hasattr(lib, "bloom_version"):
        lib.bloom_version.restype = ctypes.c_char_p
        version = lib.bloom_version().decode()
    if not version.startswith("1."):
        msg = f"libbloom {version}: only the 1.x struct layout (Debian 12) is supported"
        raise ImportError(msg)
    if not 1000 <= capacity < 2**31:
        msg = f"libbloom 1.x takes 1000 <= entries < 2**31, not {capacity}"
        raise ValueError(msg)
    b = _LibbloomStruct()
    ref = ctypes.byref(b)
    if lib.bloom_init(ref, ctypes.c_int(capacity), ctypes.c_double(p)) != 0:
        msg = f"bloom_init({capacity}, {p}) failed"
        raise ValueError(msg)
    lib.bloom_add.argtypes = lib.bloom_check.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
    ]

    def add(keys: list[bytes]) -> None:
        a = lib.bloom_add
        for k in keys:
            a(ref, k, len(k))

    def positives(keys: list[bytes]) -> int:
        c = lib.bloom_check
        return sum(c(ref, k, len(k)) for k in keys)

    return Impl(
        "libbloom",
        version,
        b.bits,
        b.hashes,
        b.bytes,
        add,
        positives,
        "via ctypes (call cost dominates)",
        lambda: lib.bloom_free(ref),
    )


_FACTORIES: dict[str, Callable[[int, float], Impl]] = {
    "ours": _ours,
    "ours-batch": _ours_batch,
    "pybloom-live": _pybloom_live,
    "rbloom": _rbloom,
    "pybloomfiltermmap3": _pybloomfiltermmap3,
    "libbloom": _libbloom,
}


def theory(bits: int, hashes: int, n: int) -> float:
    """Expected false-positive rate (1 - e^(-kn/m))^k."""
    return (1.0 - math.exp(-hashes * n / bits)) ** hashes


# ---------------------------------------------------------------- the run


@dataclass
class FprParams:
    """What to measure (the command-line options of ``fpr``)."""

    capacities: Sequence[int] = (1_000_000,)
    error_rates: Sequence[float] = (0.01, 0.001)
    kinds: Sequence[str] = KEY_KINDS
    implementations: Sequence[str] = IMPLEMENTATIONS
    steps: int = 8
    queries: int = 200_000
    seed: int = 1234


@dataclass
class FprResult:
    """Rows (one per implementation, setting and fill step) plus what was skipped."""

    params: FprParams
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def fill_points(capacity: int, steps: int) -> list[int]:
    """Entry counts after each step: evenly spaced up to 2 x capacity (n = capacity included
    when steps is even)."""
    return [round(2 * capacity * j / steps) for j in range(1, steps + 1)]


def _rate(count_: int, seconds: float) -> float | None:
    return count_ / seconds if seconds > 0 and count_ else None


def run(params: FprParams, progress: Progress | None = None) -> FprResult:
    """Measure every available implementation at every setting; see the module docstring."""
    if params.steps < 1:
        msg = "--steps must be at least 1"
        raise ValueError(msg)
    for kind in params.kinds:
        if kind not in _MAKERS:
            msg = f"unknown key kind {kind!r}; choose from {', '.join(KEY_KINDS)}"
            raise ValueError(msg)
    for name in params.implementations:
        if name not in _FACTORIES:
            msg = f"unknown implementation {name!r}; choose from {', '.join(IMPLEMENTATIONS)}"
            raise ValueError(msg)
    result = FprResult(params)
    for capacity in params.capacities:
        points = fill_points(capacity, params.steps)
        for kind in params.kinds:
            inserted, queried = make_keys(kind, points[-1], params.queries, params.seed)
            for p in params.error_rates:
                for name in params.implementations:
                    _measure(result, name, capacity, p, kind, points, inserted, queried)
                    if progress is not None:
                        progress.advance(label=f"fpr {kind} p={p:g} {name}")
    return result


def _measure(
    result: FprResult,
    name: str,
    capacity: int,
    p: float,
    kind: str,
    points: list[int],
    inserted: list[bytes],
    queried: list[bytes],
) -> None:
    try:
        impl = _FACTORIES[name](capacity, p)
    except (ImportError, OSError, ValueError) as exc:
        result.skipped.setdefault(name, f"{type(exc).__name__}: {exc}")
        return
    try:
        done = 0
        for n in points:
            chunk = inserted[done:n]
            t0 = time.perf_counter()
            impl.add(chunk)
            t1 = time.perf_counter()
            fp = impl.positives(queried)
            t2 = time.perf_counter()
            done = n
            expected = theory(impl.bits, impl.hashes, n) if impl.hashes else None
            fpr = fp / len(queried) if queried else None
            result.rows.append(
                {
                    "impl": impl.name,
                    "version": impl.version,
                    "kind": kind,
                    "capacity": capacity,
                    "error_rate": p,
                    "n": n,
                    "fill": n / capacity,
                    "queries": len(queried),
                    "false_positives": fp,
                    "fpr": fpr,
                    "theory": expected,
                    "rel_err": (fpr - expected) / expected
                    if fpr is not None and expected
                    else None,
                    "inserts_per_s": _rate(len(chunk), t1 - t0),
                    "lookups_per_s": _rate(len(queried), t2 - t1),
                    "bits": impl.bits,
                    "hashes": impl.hashes,
                    "bytes": impl.nbytes,
                    "bits_per_entry": impl.bits / capacity,
                    "note": impl.note,
                }
            )
    finally:
        impl.close()


# ---------------------------------------------------------------- output

COLUMNS = (
    Column("impl", "implementation", text, left=True),
    Column("kind", "keys", text, left=True),
    Column("capacity", "capacity", count),
    Column("error_rate", "p", lambda v: f"{v:g}"),
    Column("n", "n", count),
    Column("fill", "n/cap", fixed(2)),
    Column("fpr", "FPR", percent),
    Column("theory", "theory", percent),
    Column("rel_err", "rel.err", lambda v: "-" if v is None else f"{v:+.1%}"),
    Column("inserts_per_s", "inserts/s", human),
    Column("lookups_per_s", "lookups/s", human),
    Column("bits", "m bits", count),
    Column("hashes", "k", text),
    Column("bytes", "bytes", count),
    Column("bits_per_entry", "bits/entry", fixed(2)),
)


def to_json(result: FprResult, machine: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of ``fpr --json``."""
    p = result.params
    return {
        "benchmark": "fpr",
        "machine": machine,
        "params": {
            "capacities": list(p.capacities),
            "error_rates": list(p.error_rates),
            "kinds": list(p.kinds),
            "implementations": list(p.implementations),
            "steps": p.steps,
            "queries": p.queries,
            "seed": p.seed,
        },
        "skipped": dict(result.skipped),
        "rows": result.rows,
    }


def render(result: FprResult) -> str:
    """The plain table, followed by one line per skipped implementation and the notes."""
    out = [format_table(COLUMNS, result.rows)]
    for name, why in result.skipped.items():
        out.append(f"skipped {name}: {why}")
    notes = {r["impl"]: r["note"] for r in result.rows if r["note"]}
    out += [f"note {name}: {note}" for name, note in notes.items()]
    out.append(
        "lookups/s: single calls on keys never inserted (the FPR probe); "
        "inserts/s: the keys added in that step"
    )
    return "\n".join(out)


def require_matplotlib() -> Any:
    """matplotlib.pyplot on the Agg backend; ImportError with an install hint if missing."""
    try:
        mpl = importlib.import_module("matplotlib")
        mpl.use("Agg")
        return importlib.import_module("matplotlib.pyplot")
    except ImportError as exc:
        msg = (
            "--plot needs matplotlib: pip install 'squidguard-bloom[plot]' "
            "(or pip install matplotlib)"
        )
        raise ImportError(msg) from exc


def plot(result: FprResult, path: str) -> None:
    """FPR against fill, one panel per (error rate, key kind), theory dashed.

    Raises ImportError with an install hint when matplotlib is missing.
    """
    plt = require_matplotlib()
    panels = sorted(
        {(r["capacity"], r["error_rate"], r["kind"]) for r in result.rows},
        key=lambda t: (t[0], -t[1], t[2]),
    )
    if not panels:
        msg = "nothing to plot: no implementation produced a measurement"
        raise ValueError(msg)
    cols = min(len(panels), 4)
    rows_n = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.4 * rows_n), squeeze=False)
    for ax, (cap, p, kind) in zip(axes.flat, panels, strict=False):
        mine = [
            r for r in result.rows if (r["capacity"], r["error_rate"], r["kind"]) == (cap, p, kind)
        ]
        for name in dict.fromkeys(r["impl"] for r in mine):
            pts = [r for r in mine if r["impl"] == name]
            fprs = [r["fpr"] or math.nan for r in pts]  # 0 has no place on a log axis
            ax.plot([r["fill"] for r in pts], fprs, marker="o", ms=3, label=name)
        ours = [r for r in mine if r["impl"] == "ours"] or mine
        ax.plot(
            [r["fill"] for r in ours],
            [r["theory"] for r in ours],
            "k--",
            lw=1,
            label="theory (ours m, k)",
        )
        ax.axhline(p, color="grey", lw=0.5)
        ax.set_yscale("log")
        ax.set_title(f"{kind}, p={p:g}, capacity {cap:,}", fontsize=9)
        ax.set_xlabel("n / capacity")
        ax.set_ylabel("false-positive rate")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
