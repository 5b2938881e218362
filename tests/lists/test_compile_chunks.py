"""Compiling in bounded chunks (writer.CHUNK): any chunk size gives the same file, and
every entry is found in it, also when the table's last probe run wraps to slot 0."""

from __future__ import annotations

import mmap
import random
import string
from collections import Counter
from pathlib import Path

import mmh3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squidguard_bloom.core.lists.compiled import (
    HEADER,
    SEED,
    CompiledDomainList,
    CompiledUrlList,
    compiled_path,
    suffix_table,
)
from squidguard_bloom.core.lists.lookup import DomainList, UrlList
from squidguard_bloom.core.lists.store import open_list
from squidguard_bloom.core.lists.writer import home, pick_suffixes, slot_count, stored_lines, write
from squidguard_bloom.core.urlnorm import parse_target


def _name(rnd: random.Random) -> str:
    return "".join(rnd.choices(string.ascii_lowercase, k=rnd.randint(3, 10)))


def _domain_text(rnd: random.Random) -> tuple[str, dict[str, str | None]]:
    """A list of 3,000 entries in every spelling the reader accepts, and what it holds."""
    want: dict[str, str | None] = {}
    lines = []
    for i in range(3000):
        name = f"{_name(rnd)}.{rnd.choice(['com', 'net', 'org', 'de', 'co.uk', 'x'])}"
        redirect = f"http://r.example/{i}" if rnd.random() < 0.1 else None
        shape = rnd.random()
        if shape < 0.02:
            lines.append(f"# comment {name}")
            continue
        if shape < 0.04:
            lines.append(f"+.{name.upper()}.")  # sign, dots, capitals
            redirect = None
        elif shape < 0.06:
            lines.append(f"  {name}\r")
            redirect = None
        else:
            lines.append(name if redirect is None else f"{name} \t{redirect}")
        want[name] = redirect
        if rnd.random() < 0.01:  # the same key again, further down: the later line wins
            lines.insert(rnd.randrange(len(lines)), f"{name} http://early.example/")
        if rnd.random() < 0.01:
            lines.append("")
    return "\n".join(lines) + "\n", want


def _compile(path: Path, kind: str, chunk: int) -> bytes:
    write(kind, str(path), chunk)
    return Path(compiled_path(str(path))).read_bytes()


@pytest.mark.parametrize("chunk", [64, 1000, 9999])
def test_domain_list_in_chunks_equals_one_chunk(tmp_path: Path, chunk: int) -> None:
    """Many blocks and parts (duplicates across them, mixed plain and odd lines): the
    bytes of a one-chunk compile, and every entry found with its own redirect."""
    text, want = _domain_text(random.Random(chunk))
    path = tmp_path / "domains"
    path.write_text(text)
    assert path.stat().st_size > 4 * chunk  # 4 parts or more
    one = _compile(path, "domain", 1 << 30)
    assert _compile(path, "domain", chunk) == one
    lst = open_list("domain", str(path))
    assert isinstance(lst, CompiledDomainList)
    assert len(lst) == len(want)
    plain = DomainList(str(path), text)
    for name, redirect in want.items():
        for host in (name, f"www.{name}"):
            hit = lst.lookup(host)
            assert hit is not None, host
            assert (hit.entry, hit.redirect) == (name, redirect)
            other = plain.lookup(host)
            assert other is not None and (other.entry, other.redirect) == (name, redirect)
    assert lst.lookup("absent.example") is None
    assert not list(tmp_path.glob("domains.sgb.*"))  # no spill file left behind


@pytest.mark.parametrize("chunk", [50, 700])
def test_url_list_in_chunks_equals_one_chunk(tmp_path: Path, chunk: int) -> None:
    """Hosts with many entries, spread over many blocks: one record per host either way."""
    rnd = random.Random(chunk)
    hosts = [f"{_name(rnd)}.example" for _ in range(150)]
    entries: dict[str, str | None] = {}
    lines = []
    for i in range(1500):
        entry = f"{rnd.choice(hosts)}/{_name(rnd)}/{i}"
        redirect = f"http://r.example/{i}" if i % 7 == 0 else None
        lines.append(entry if redirect is None else f"{entry} {redirect}")
        entries[entry] = redirect
    lines.insert(5, f"{lines[-1].split()[0]} http://early.example/")  # overwritten later
    text = "\n".join(lines) + "\n"
    path = tmp_path / "urls"
    path.write_text(text)
    one = _compile(path, "url", 1 << 30)
    assert _compile(path, "url", chunk) == one
    lst = open_list("url", str(path))
    assert isinstance(lst, CompiledUrlList)
    assert len(lst) == len(entries)
    plain = UrlList(str(path), text)
    for entry, redirect in entries.items():
        target = parse_target(f"http://{entry}?q=1")
        hit, other = lst.lookup(target), plain.lookup(target)
        assert hit is not None and other is not None, entry
        assert (hit.entry, hit.redirect) == (other.entry, other.redirect) == (entry, redirect)


def _homed(nslots: int, wanted: dict[int, int], prefix: str = "h") -> list[str]:
    """Names whose home slot in a table of nslots is each key of wanted, that many times."""
    found: list[str] = []
    left = dict(wanted)
    i = 0
    while any(left.values()):
        name = f"{prefix}{i}.example"
        where = home(mmh3.hash64(name.encode(), SEED, signed=False)[0], nslots)[0]
        if left.get(where):
            left[where] -= 1
            found.append(name)
        i += 1
    return found


@pytest.mark.parametrize("chunk", [16, 1 << 20])
def test_last_probe_run_wraps_and_pushes_the_first_ones(tmp_path: Path, chunk: int) -> None:
    """5 keys at home 15 of 16 slots, 3 at home 0 and 2 at 2: four wrap to slots 0-3, the
    home-0 keys then take 4-6 and the home-2 keys 7-8; all are found."""
    names = _homed(slot_count(10), {15: 5, 0: 3, 2: 2})
    assert slot_count(len(names)) == 16
    path = tmp_path / "domains"
    path.write_text("".join(f"{n} http://r.example/{n}\n" for n in names))
    raw = _compile(path, "domain", chunk)
    tags = [int.from_bytes(raw[HEADER.size + 2 * s : HEADER.size + 2 * s + 2], "little")
            for s in range(16)]
    assert [t != 0 for t in tags] == [True] * 9 + [False] * 6 + [True]
    lst = open_list("domain", str(path))
    for n in names:
        hit = lst.lookup(n)
        assert hit is not None and (hit.entry, hit.redirect) == (n, f"http://r.example/{n}")
    for n in _homed(16, {15: 1, 0: 1, 3: 1, 9: 1}, "absent"):  # probes across the wrap
        assert lst.lookup(n) is None


def test_plain_blocks_and_parsed_blocks_store_the_same(tmp_path: Path) -> None:
    """A block of plain lines is taken as it is, lower-cased; one with a comment goes
    through the line reader: the records are the same."""
    rnd = random.Random(7)
    names = [f"{_name(rnd).upper()}.{_name(rnd)}.com" for _ in range(500)]
    plain, parsed = tmp_path / "plain", tmp_path / "parsed"
    plain.write_text("".join(f"{n}\n" for n in names))
    parsed.write_text("# a comment: no fast path\n" + "".join(f"{n}\n" for n in names))
    a, b = _compile(plain, "domain", 1 << 20), _compile(parsed, "domain", 1 << 20)
    assert a[HEADER.size :] == b[HEADER.size :]
    assert open_list("domain", str(plain)).lookup(names[3].lower()).entry == names[3].lower()


@pytest.mark.parametrize("chunk", [200, 1 << 20])
def test_suffix_table_counts_every_last_label(tmp_path: Path, chunk: int) -> None:
    """1,500 distinct last labels, more than a part tallies at once, each used by 1 to 6
    names (duplicates count once): the suffix table is the one the exact counts give."""
    rnd = random.Random(11)
    names = [f"{_name(rnd)}.t{i:04d}" for i in range(1500) for _ in range(rnd.randint(1, 6))]
    # "com" alone has no label to share: 9 uses (gain 27), not 10 (30, the order changes)
    names += ["com", ".com", *(f"{c}.com" for c in "abcdefghi")]
    path = tmp_path / "domains"
    path.write_text("".join(f"{n}\n" for n in names + names[::3]))
    raw = _compile(path, "domain", chunk)
    counts = Counter(n.rpartition(".")[2].encode() for n in set(names) if "." in n.strip("."))
    with open(compiled_path(str(path)), "rb") as fh:
        table = suffix_table(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
    assert table == pick_suffixes(counts)
    assert counts[b"com"] == 9 and b"com" in table and len(table) == 255
    assert raw == _compile(path, "domain", 1 << 30)


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(["domain", "url"]),
       lines=st.lists(st.text(alphabet="aZ09.-_/:@#+% \t\ré", max_size=12), max_size=8))
def test_plain_lines_are_stored_as_the_reader_stores_them(kind: str, lines: list[str]) -> None:
    """Whenever the C check takes a block as plain (lower-cased as it is), the text
    reader makes the same entries of it (empty lines are no entry either way)."""
    block = ("\n".join(lines) + "\n").encode()
    fast, read = stored_lines(kind, block), stored_lines(kind, block, plain=False)
    assert [x for x in fast.split(b"\n") if x] == read.split(b"\n")[:-1]
