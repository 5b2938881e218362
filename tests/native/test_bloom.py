"""The C Bloom filter through its Python class: sizing, bits, persistence, sharing."""

from __future__ import annotations

import math
import multiprocessing
import os
import struct
from pathlib import Path

import mmh3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squidguard_bloom.errors import BloomError, BloomFileError
from squidguard_bloom.native.bloom import BloomFilter, murmur3_128, sizing
from tests.reference import ReferenceBloom, reference_sizing

HEADER = 128
keys_st = st.lists(st.binary(max_size=40) | st.text(max_size=20), max_size=60)


def data_of(path: Path) -> bytes:
    """The bit array stored in a filter file."""
    return path.read_bytes()[HEADER:]


# --- sizing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "p", "m", "k"),
    [(1_000_000, 0.01, 9_585_059, 7), (1_000_000, 0.001, 14_377_588, 10)],
)
def test_sizing_known_values(n: int, p: float, m: int, k: int) -> None:
    """The figures bloom.md derives for 10^6 entries at 1 % and 0.1 %."""
    assert sizing(n, p) == (m, k)


@given(st.integers(1, 10**12), st.floats(1e-12, 0.999, exclude_max=True))
def test_sizing_follows_formula(n: int, p: float) -> None:
    """m = ceil(-n ln p / ln^2 2); k is the neighbour of (m/n) ln 2 with lower FPR."""
    m, k = sizing(n, p)
    assert m == math.ceil(-n * math.log(p) / math.log(2) ** 2)
    assert (m, k) == reference_sizing(n, p)
    kstar = m / n * math.log(2)
    assert k in {max(1, math.floor(kstar)), math.floor(kstar) + 1}
    other = ({math.floor(kstar), math.floor(kstar) + 1} - {k}).pop()
    if other >= 1:
        def fpr(j: int) -> float:
            return (1 - math.exp(-j * n / m)) ** j
        assert fpr(k) <= fpr(other)


def test_sizing_beyond_32_bits() -> None:
    """Sizes past 2^32 bits are computed in 64 bits, never wrapped."""
    m, k = sizing(10**10, 0.01)
    assert m == math.ceil(-(10**10) * math.log(0.01) / math.log(2) ** 2)
    assert m > 2**32 and k == 7


@pytest.mark.parametrize(
    ("n", "p"),
    [
        (0, 0.01), (-5, 0.01), (2**64, 0.1),
        (10, 0.0), (10, 1.0), (10, -0.1), (10, 2.0), (10, math.nan),
    ],
)
def test_bad_parameters_are_refused(n: int, p: float) -> None:
    """Impossible capacities and rates raise BloomError naming the limit."""
    with pytest.raises(BloomError, match="must be"):
        BloomFilter(n, p)
    with pytest.raises(BloomError):
        sizing(n, p)


def test_unrepresentable_size_is_refused() -> None:
    """A filter over 2^63 bits is refused with a clear message, not wrapped."""
    with pytest.raises(BloomError, match="too large"):
        sizing(2**62, 1e-9)
    with pytest.raises(BloomError, match="too large"):
        BloomFilter(2**63, 0.001)


def test_wrong_types_are_refused() -> None:
    """bool and float capacities, and non-key objects, are TypeErrors."""
    with pytest.raises(TypeError):
        BloomFilter(True, 0.01)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        BloomFilter(10.0, 0.01)  # type: ignore[arg-type]
    with BloomFilter(100, 0.01) as f:
        with pytest.raises(TypeError, match="str or bytes"):
            f.add(12)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="str or bytes"):
            12 in f  # noqa: B015
        with pytest.raises(TypeError, match="str or bytes"):
            f.add_many([b"a", 3])  # type: ignore[list-item]


# --- hashing and bit layout ----------------------------------------------------


@given(st.binary(max_size=100), st.integers(0, 2**32 - 1))
def test_murmur3_matches_mmh3(data: bytes, seed: int) -> None:
    """Known answers: the C MurmurHash3 x64-128 equals the mmh3 package."""
    assert murmur3_128(data, seed) == mmh3.hash64(data, seed, signed=False)


@settings(max_examples=150)
@given(
    st.integers(1, 3000),
    st.floats(0.0005, 0.9),
    st.integers(0, 2**32 - 1),
    keys_st,
)
def test_c_and_reference_set_the_same_bits(
    tmp_path_factory: pytest.TempPathFactory, n: int, p: float, seed: int, keys: list
) -> None:
    """For any parameters (tiny m included) C and the mmh3 reference agree bit for bit."""
    ref = ReferenceBloom(n, p, seed)
    path = tmp_path_factory.mktemp("ref") / "f.bloom"
    with BloomFilter(n, p, path, seed=seed) as f:
        for key in keys:
            raw = key.encode() if isinstance(key, str) else key
            assert f.add(key) == ref.add(raw)
    assert data_of(path) == bytes(ref.data)


def test_probes_beyond_2_to_32(tmp_path: Path) -> None:
    """A filter of more than 2^32 bits sets bits above index 2^32 where the math says."""
    n, p = 460_000_000, 0.01  # m ~ 4.4e9 bits; the file is sparse
    path = tmp_path / "big.bloom"
    f = BloomFilter(n, p, path)
    ref = ReferenceBloom.__new__(ReferenceBloom)
    ref.bits, ref.hashes = reference_sizing(n, p)
    ref.seed = f.info().seed
    assert ref.bits > 2**32
    high = []
    for i in range(200):
        key = b"client-%d" % i
        f.add(key)
        high += [x for x in ref.probes(key) if x >= 2**32]
    f.close()
    assert high, "some probe must land above 2^32 for 200 keys"
    with path.open("rb") as fh:
        for x in high:
            fh.seek(HEADER + x // 8)
            assert fh.read(1)[0] & (1 << (x % 8))
    with BloomFilter.open(path) as again:
        assert all(b"client-%d" % i in again for i in range(200))


# --- correctness: no false negatives ---------------------------------------------


@given(keys_st)
def test_no_false_negatives(keys: list) -> None:
    """Every added key is reported present, single and batch, str and bytes alike."""
    with BloomFilter(50, 0.01) as f:
        f.add_many(keys[::2])
        for key in keys[1::2]:
            f.add(key)
        assert all(k in f for k in keys)
        assert all(f.contains_many(keys))
        for key in keys:
            other = key.encode() if isinstance(key, str) else key
            assert other in f


@given(keys_st)
def test_no_false_negatives_after_save_and_load(
    tmp_path_factory: pytest.TempPathFactory, keys: list
) -> None:
    """save() then load() keeps every key and the entry count."""
    path = tmp_path_factory.mktemp("save") / "f.bloom"
    with BloomFilter(100, 0.001) as f:
        f.add_many(keys)
        f.save(path)
        before = f.info()
    with BloomFilter.load(path) as g:
        assert all(g.contains_many(keys))
        assert g.info().entries == before.entries
        assert g.info().bits_set == before.bits_set


batch_keys_st = st.lists(
    st.binary(max_size=12) | st.text(alphabet="ab\x00é", max_size=6)
    | st.binary(max_size=6).map(bytearray) | st.binary(max_size=6).map(memoryview),
    max_size=80,
)


@settings(max_examples=300)
@given(batch_keys_st, st.booleans())
def test_batch_calls_answer_as_single_calls(keys: list, uniform: bool) -> None:
    """add_many/contains_many give, key by key, what add()/in give, whichever batch
    form C is handed (NUL-split or with lengths): keys holding NUL, empty keys,
    repeats within the batch, str next to bytes, bytearray and memoryview."""
    if uniform:  # all str or all bytes: the NUL-joined form, unless a key holds NUL
        keys = [k if isinstance(k, str) else bytes(k) for k in keys]
        keys = [k for k in keys if isinstance(k, str)] or [bytes(k) for k in keys]
    with BloomFilter(40, 0.01, seed=7) as batch, BloomFilter(40, 0.01, seed=7) as single:
        probe = [*keys, b"absent", "z\x00z", b""]
        before = [k in single for k in probe]
        assert batch.contains_many(probe) == before
        assert batch.add_many(keys) == [single.add(k) for k in keys]
        assert batch.contains_many(probe) == [k in single for k in probe]
        assert batch.info().bits_set == single.info().bits_set
        assert batch.info().entries == single.info().entries


def test_add_reports_newness_and_counts() -> None:
    """add() is True once per key; entries counts the new ones."""
    with BloomFilter(1000, 0.001) as f:
        assert f.add("10.0.0.1") is True
        assert f.add("10.0.0.1") is False
        assert f.add_many(["a", "b", "a"]) == [True, True, False]
        assert f.info().entries == 3
        assert len(f) == 3


def test_past_capacity_keeps_working() -> None:
    """Adding 3x capacity never raises; info() says it is over capacity."""
    with BloomFilter(1000, 0.01) as f:
        keys = [b"k%d" % i for i in range(3000)]
        f.add_many(keys)
        info = f.info()
        assert info.over_capacity
        assert info.entries > 1000
        assert all(f.contains_many(keys))
        assert info.current_error_rate > 0.01
        assert "OVER CAPACITY" in info.describe()


def test_reset_clears_everything() -> None:
    """reset() empties the bit array and the count."""
    with BloomFilter(1000, 0.01) as f:
        f.add_many([b"a", b"b"])
        f.reset()
        info = f.info()
        assert (info.entries, info.bits_set) == (0, 0)
        assert b"a" not in f


def test_estimated_count_tracks_distinct_keys() -> None:
    """The fill-based estimate is within 2 % of the distinct keys added."""
    with BloomFilter(100_000, 0.01) as f:
        f.add_many([b"%d" % i for i in range(50_000)])
        est = f.info().estimated_count
    assert abs(est - 50_000) / 50_000 < 0.02


# --- false-positive rate -------------------------------------------------------


@pytest.mark.parametrize("p", [0.01, 0.001])
@pytest.mark.parametrize("packed", [False, True])
def test_false_positive_rate_matches_theory(p: float, packed: bool) -> None:
    """At capacity (n = 200,000, fixed keys and seed) the measured FPR is within
    10 % (relative) of (1 - e^(-kn/m))^k, for text and for packed IPv4 keys."""
    n, queries = 200_000, 1_000_000
    if packed:  # sequential client addresses: structured keys stress weak hashes
        inserted = [struct.pack(">I", 0x0A000000 + i) for i in range(n)]
        absent = [struct.pack(">I", 0x64000000 + i) for i in range(queries)]
    else:
        inserted = [f"client-{i}" for i in range(n)]
        absent = [f"stranger-{i}" for i in range(queries)]
    with BloomFilter(n, p) as f:
        f.add_many(inserted)
        m, k = f.info().bits, f.info().hashes
        measured = sum(f.contains_many(absent)) / queries
    theory = (1 - math.exp(-k * n / m)) ** k
    assert abs(measured - theory) / theory < 0.10, (measured, theory)


# --- files ---------------------------------------------------------------------


def test_shared_file_is_shared_between_handles(tmp_path: Path) -> None:
    """Two opens of one path see each other's adds at once (MAP_SHARED)."""
    path = tmp_path / "seen.bloom"
    with BloomFilter(1000, 0.01, path) as a, BloomFilter(1000, 0.01, path) as b:
        assert a.add("10.1.2.3")
        assert "10.1.2.3" in b
        assert not b.add("10.1.2.3")
        assert b.info().entries == 1
        assert a.info().shared


def test_shared_file_survives_reopen(tmp_path: Path) -> None:
    """Keys persist in the file after close; open() takes parameters from the header."""
    path = tmp_path / "seen.bloom"
    with BloomFilter(5000, 0.001, path) as f:
        f.add_many([b"x%d" % i for i in range(100)])
    with BloomFilter.open(path) as g:
        info = g.info()
        assert (info.capacity, info.error_rate, info.entries) == (5000, 0.001, 100)
        assert all(g.contains_many([b"x%d" % i for i in range(100)]))


def test_file_with_other_parameters_is_refused(tmp_path: Path) -> None:
    """Reopening with another capacity, rate or seed fails and says what to do."""
    path = tmp_path / "seen.bloom"
    BloomFilter(1000, 0.01, path).close()
    for kwargs in ({"capacity": 2000, "error_rate": 0.01}, {"capacity": 1000, "error_rate": 0.02}):
        with pytest.raises(BloomFileError, match=r"another capacity.*move it aside"):
            BloomFilter(path=path, **kwargs)
    with pytest.raises(BloomFileError, match="another capacity"):
        BloomFilter(1000, 0.01, path, seed=1)


def test_foreign_truncated_and_corrupted_files_are_refused(tmp_path: Path) -> None:
    """Bad magic, a short file, a flipped header byte, trailing bytes: each is named."""
    good = tmp_path / "good.bloom"
    BloomFilter(1000, 0.01, good).close()
    raw = good.read_bytes()
    cases = {
        "foreign": (b"#!/bin/sh\necho hello\n" + bytes(500), "bad magic"),
        "empty": (b"", "truncated"),
        "short-header": (raw[:60], "truncated"),
        "short-data": (raw[:-8], "truncated"),
        "padded": (raw + b"\0" * 8, "truncated or padded"),
        "flipped": (raw[:20] + bytes([raw[20] ^ 1]) + raw[21:], "corrupted"),
        "version": (raw[:8] + struct.pack("<I", 99) + raw[12:], "unsupported format version"),
    }
    for name, (content, reason) in cases.items():
        path = tmp_path / f"{name}.bloom"
        path.write_bytes(content)
        with pytest.raises(BloomFileError, match=reason) as err:
            BloomFilter(1000, 0.01, path)
        assert str(path) in str(err.value)
        with pytest.raises(BloomFileError, match=reason):
            BloomFilter.load(path)
        assert path.read_bytes() == content, "a refused file must be left untouched"


def test_missing_file_errors_name_the_path(tmp_path: Path) -> None:
    """open()/load() of a missing file raise FileNotFoundError with the path."""
    path = tmp_path / "nope.bloom"
    with pytest.raises(FileNotFoundError) as err:
        BloomFilter.open(path)
    assert err.value.filename == str(path)
    with pytest.raises(FileNotFoundError):
        BloomFilter.load(path)
    with pytest.raises(FileNotFoundError):
        BloomFilter(100, 0.01, tmp_path / "no-such-dir" / "f.bloom")


def test_save_replaces_atomically(tmp_path: Path) -> None:
    """save() over an existing file leaves a valid filter and no temp files."""
    path = tmp_path / "f.bloom"
    path.write_bytes(b"old junk that is longer than nothing" * 100)
    with BloomFilter(100, 0.01) as f:
        f.add("k")
        f.save(path)
    assert sorted(os.listdir(tmp_path)) == ["f.bloom"]
    with BloomFilter.load(path) as g:
        assert "k" in g


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    """close() twice is fine; any use afterwards raises BloomError."""
    f = BloomFilter(100, 0.01, tmp_path / "f.bloom")
    f.close()
    f.close()
    assert f.closed
    for use in (lambda: f.add("a"), lambda: "a" in f, f.info, f.reset, lambda: f.add_many(["a"])):
        with pytest.raises(BloomError, match="closed"):
            use()


# --- several processes -----------------------------------------------------------


def _add_range(path: str, start: int, count: int, barrier: object) -> None:
    keys = [b"key-%d" % i for i in range(start, start + count)]
    barrier.wait()  # type: ignore[attr-defined]
    f = BloomFilter(400_000, 0.01, path)
    for key in keys:  # single calls, so the processes interleave finely
        f.add(key)
    f.close()


def test_concurrent_processes_lose_no_bit(tmp_path: Path) -> None:
    """Four processes create (racing) and fill one file at once; the result is
    bit-identical to the same keys added by one process, and none is missing."""
    path = tmp_path / "shared.bloom"
    procs_n, per = 4, 100_000
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(procs_n)
    procs = [
        ctx.Process(target=_add_range, args=(str(path), i * per, per, barrier))
        for i in range(procs_n)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    all_keys = [b"key-%d" % i for i in range(procs_n * per)]
    with BloomFilter.open(path) as shared:
        assert all(shared.contains_many(all_keys))
        seed = shared.info().seed
        entries = shared.info().entries
    expected = tmp_path / "expected.bloom"
    with BloomFilter(400_000, 0.01, expected, seed=seed) as alone:
        alone.add_many(all_keys)
        alone_entries = alone.info().entries
    assert data_of(path) == data_of(expected)
    # A key counts as new unless all its bits were already set when it was
    # added: a false positive of the filter so far.  How many keys hit one
    # depends on the order of the adds, which racing changes, so the counts
    # differ by a few standard deviations of that number (~650 here).
    false_hits = len(all_keys) - alone_entries
    assert abs(entries - alone_entries) <= 6 * math.sqrt(false_hits) + 10
    assert entries <= len(all_keys)
    assert [p.name for p in tmp_path.iterdir() if ".tmp." in p.name] == []


def _add_same(path: str, count: int, barrier: object, out: str) -> None:
    keys = [b"client-%d" % i for i in range(count)]
    f = BloomFilter(count, 0.01, path)
    barrier.wait()  # type: ignore[attr-defined]
    news = bytes(f.add(key) for key in keys)  # single calls: the processes interleave
    f.close()
    Path(out).write_bytes(news)


def test_a_key_added_by_racing_processes_is_new_for_exactly_one(tmp_path: Path) -> None:
    """Four processes add the same keys in the same order at once (Squid's children
    seeing one client's first requests): each key is new for one of them only, so a
    client is welcomed once, and every key is new for someone unless it was a false
    positive of the filter so far."""
    procs_n, count = 4, 100_000
    path = str(tmp_path / "seen.bloom")
    BloomFilter(count, 0.01, path).close()  # created before the race
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(procs_n)
    outs = [str(tmp_path / f"news.{i}") for i in range(procs_n)]
    procs = [ctx.Process(target=_add_same, args=(path, count, barrier, out)) for out in outs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    per_key = [sum(col) for col in zip(*(Path(o).read_bytes() for o in outs), strict=True)]
    with BloomFilter(count, 0.01) as alone:
        fresh_alone = sum(alone.add_many([b"client-%d" % i for i in range(count)]))
    with BloomFilter.open(path) as shared:
        entries = shared.info().entries
    assert max(per_key) == 1, f"{per_key.count(2)} keys were new for two processes"
    false_hits = count - fresh_alone
    assert abs(sum(per_key) - fresh_alone) <= 6 * math.sqrt(false_hits) + 10
    assert entries == sum(per_key)


def _add_one(path: str) -> None:
    with BloomFilter.open(path) as f:
        assert f.add(b"a new key") is True
        assert f.add(b"a new key") is False


@pytest.mark.parametrize("holder", ["dead", "alive"])
def test_a_lock_left_by_a_crash_never_wedges_adds(tmp_path: Path, holder: str) -> None:
    """A child killed while adding leaves its PID in the add lock: the next add takes
    the lock over (at once when that PID is gone; within a bounded wait when, after a
    reboot, the PID names some other live process)."""
    path = tmp_path / "seen.bloom"
    BloomFilter(1000, 0.01, path).close()
    if holder == "dead":
        proc = multiprocessing.get_context("fork").Process(target=os.getpid)
        proc.start()
        proc.join()
        pid = proc.pid
    else:
        pid = 1  # init: alive, and never ours
    raw = bytearray(path.read_bytes())
    raw[72:76] = struct.pack("<I", pid)  # the add lock word (csrc/bloom.h)
    path.write_bytes(bytes(raw))
    proc = multiprocessing.get_context("fork").Process(target=_add_one, args=(str(path),))
    proc.start()
    proc.join(20)
    stuck = proc.is_alive()
    if stuck:
        proc.kill()
    assert not stuck, "an add waited for a dead or foreign lock holder"
    assert proc.exitcode == 0
    assert struct.unpack_from("<I", path.read_bytes(), 72)[0] == 0  # released


def _set_bits(f: BloomFilter, tmp_path: Path) -> set[int]:
    """The indexes of the set bits of a filter (saved, then read from the file)."""
    path = tmp_path / "bits.bloom"
    f.save(path)
    data = path.read_bytes()[128:]
    return {i * 8 + b for i, byte in enumerate(data) for b in range(8) if byte >> b & 1}


@pytest.mark.parametrize("key", [b"10.0.0.1", b"\x0a\x00\x00\x01", "user\u00e9", b""])
def test_positions_are_the_bits_add_sets(tmp_path: Path, key: str | bytes) -> None:
    """With one shard, positions() names exactly the bits add() sets."""
    f = BloomFilter(5000, 0.001)
    shard, where = f.positions(key)
    assert shard == 0 and len(where) == f.hashes == 10
    f.add(key)
    assert _set_bits(f, tmp_path) == set(where)


def test_sharded_positions_stay_in_their_shard_and_spread() -> None:
    f = BloomFilter(10_000, 0.01)
    bits = f.info().bits
    size = -(-bits // 7)
    keys = [b"%d" % i for i in range(7000)]
    flat = f.positions_many(keys, 7)
    k = f.hashes
    shards = flat[:: k + 1]
    assert sorted(set(shards)) == list(range(7))
    assert min(shards.count(s) for s in range(7)) > 800  # about 1000 each
    for j in range(0, len(flat), k + 1):
        probes = flat[j + 1 : j + 1 + k]
        assert all(0 <= x < size for x in probes) and len(set(probes)) == k
    assert flat[: k + 1] == [*f.positions(keys[0], 7)[:1], *f.positions(keys[0], 7)[1]]


def test_positions_refuse_impossible_shard_counts() -> None:
    f = BloomFilter(100, 0.01)
    bits = f.info().bits
    with pytest.raises(BloomError, match="shards must be at most half"):
        f.positions(b"x", bits // 2 + 1)
    with pytest.raises(BloomError, match="shards must be a whole number"):
        f.positions(b"x", 0)
    assert f.positions_many([], 3) == []
