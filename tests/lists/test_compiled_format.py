"""The compiled list file (format 4): refusal and rebuild, damage, tag collisions, suffixes."""

from __future__ import annotations

import mmap
import os
import random
import string
from pathlib import Path

import mmh3
import pytest

from squidguard_bloom.core.lists.compiled import (
    HEADER,
    SEED,
    VERSION,
    CompiledDomainList,
    CompiledUrlList,
    suffix_table,
    tables_size,
)
from squidguard_bloom.core.lists.lookup import DomainList, UrlList
from squidguard_bloom.core.lists.store import compile_list, open_list
from squidguard_bloom.core.lists.writer import home, pick_suffixes, slot_count
from squidguard_bloom.core.urlnorm import parse_target
from squidguard_bloom.native.listindex import ListIndex


def _compiled(tmp_path: Path, text: str, kind: str = "domain") -> Path:
    path = tmp_path / ("domains" if kind == "domain" else "urls")
    path.write_text(text)
    compile_list(kind, str(path))
    return path


def _patch(sgb: Path, offset: int, data: bytes) -> None:
    raw = bytearray(sgb.read_bytes())
    raw[offset : offset + len(data)] = data
    sgb.write_bytes(bytes(raw))


def _colliding(n: int, nslots: int) -> list[str]:
    """n names whose keys share home slot and tag in a table of nslots slots."""
    groups: dict[tuple[int, int], list[str]] = {}
    for i in range(1_000_000):
        name = f"c{i}.example"
        where = home(mmh3.hash64(name.encode(), SEED, signed=False)[0], nslots)
        group = groups.setdefault(where, [])
        group.append(name)
        if len(group) == n:
            return group
    raise AssertionError("no collision found")  # pragma: no cover


@pytest.mark.parametrize("old", [1, 2, 3, 4])  # 4: IDN entries were not punycode
def test_older_format_version_is_refused_and_rebuilt(tmp_path: Path, old: int) -> None:
    """A file of an older format is never read: it is rebuilt, and answers as the text does."""
    path = _compiled(tmp_path, "old.example\nlisted.example\n")
    sgb = tmp_path / "domains.sgb"
    _patch(sgb, 8, old.to_bytes(4, "little"))
    notes: list[str] = []
    lst = open_list("domain", str(path), notes)
    assert isinstance(lst, CompiledDomainList)
    assert len(notes) == 1
    assert f"has format version {old}, this squidguard-bloom reads {VERSION}: rebuilt" in notes[0]
    assert int.from_bytes(sgb.read_bytes()[8:12], "little") == VERSION
    assert lst.lookup("www.listed.example").entry == "listed.example"


@pytest.mark.parametrize("cut", [1, 100, "tables"])
def test_truncated_file_is_refused_and_rebuilt(tmp_path: Path, cut: int | str) -> None:
    """A file shorter than its header says (cut in the records or the tables) is rebuilt."""
    names = [f"n{i}.example" for i in range(200)]
    path = _compiled(tmp_path, "\n".join(names) + "\n")
    sgb = tmp_path / "domains.sgb"
    raw = sgb.read_bytes()
    keep = HEADER.size + 10 if cut == "tables" else len(raw) - int(cut)
    sgb.write_bytes(raw[:keep])
    notes: list[str] = []
    lst = open_list("domain", str(path), notes)
    assert f"is truncated ({keep} of its {len(raw)} bytes): rebuilt" in notes[0]
    assert sgb.read_bytes() == raw
    assert all(lst.lookup(n) for n in names)


@pytest.mark.parametrize(("offset", "value"), [
    (None, 0), (48, 17), (60, 256), (60, 1_000_000),
])
def test_extended_or_misshapen_file_is_damaged(
    tmp_path: Path, offset: int | None, value: int
) -> None:
    """Bytes appended, a slot count no multiple of 16, too many suffixes: damaged, rebuilt."""
    path = _compiled(tmp_path, "a.example\n")
    sgb = tmp_path / "domains.sgb"
    if offset is None:
        sgb.write_bytes(sgb.read_bytes() + b"\0")
    else:
        _patch(sgb, offset, value.to_bytes(4, "little"))
    notes: list[str] = []
    assert open_list("domain", str(path), notes).lookup("a.example")
    assert "is damaged: rebuilt" in notes[0]


def test_damage_inside_a_well_sized_file_never_reads_out_of_bounds(tmp_path: Path) -> None:
    """Random bytes over tags, offsets and records: lookups answer, never crash."""
    names = [f"site{i}.example" for i in range(300)]
    path = _compiled(tmp_path, "\n".join(names) + "\n")
    sgb = tmp_path / "domains.sgb"
    good = sgb.read_bytes()
    rnd = random.Random(5)
    for _ in range(200):
        raw = bytearray(good)
        for _ in range(rnd.randint(1, 40)):
            raw[rnd.randrange(HEADER.size, len(raw))] = rnd.randrange(256)
        if rnd.random() < 0.3:  # every block offset far past the end
            start = HEADER.size + 2 * int.from_bytes(raw[48:52], "little")
            raw[start : start + 8] = b"\xff" * 8
        sgb.write_bytes(bytes(raw))
        lst = open_list("domain", str(path))
        for host in [*names[:50], "absent.example", "x" * 300]:
            hit = lst.lookup(host)
            assert hit is None or isinstance(hit.entry, str)


def test_readers_refuse_buffers_too_small_for_their_tables() -> None:
    """Short or empty buffers: not found, whatever the header claims."""
    header = bytearray(HEADER.size)
    header[48:52] = (16).to_bytes(4, "little")  # 16 slots need 64 + 32 + 4 bytes
    suffixed = bytearray(header)
    suffixed[60:64] = (2).to_bytes(4, "little")  # and 2 suffixes 32 more
    for buf in (b"", bytes(10), bytes(header), bytes(header) + bytes(35),
                bytes(suffixed) + bytes(36 + 31)):
        index = ListIndex(buf)
        assert index.find_exact(b"a") == -1
        assert index.find_domain(b"a.b") == -1
        assert index.find_url(b"a/b") == -1


def test_keys_with_the_same_home_slot_and_tag(tmp_path: Path) -> None:
    """Equal 16-bit tags in one probe chain: the key bytes decide, for hits and misses."""
    present_a, present_b, absent = _colliding(3, slot_count(2))
    path = _compiled(tmp_path, f"{present_a} http://a.example/\n{present_b}\n")
    lst = open_list("domain", str(path))
    assert isinstance(lst, CompiledDomainList)
    assert lst.lookup(present_a).redirect == "http://a.example/"
    assert lst.lookup(present_b).entry == present_b
    assert lst.lookup(present_b).redirect is None
    assert lst.lookup("www." + present_a).entry == present_a
    assert lst.lookup(absent) is None


def test_probe_wraps_from_the_last_slot_to_the_first(tmp_path: Path) -> None:
    """Keys whose home is the last slot: the next ones go to slot 0 and are found there."""
    nslots = slot_count(3)
    found: list[str] = []
    i = 0
    while len(found) < 3:
        name = f"w{i}.example"
        if home(mmh3.hash64(name.encode(), SEED, signed=False)[0], nslots)[0] == nslots - 1:
            found.append(name)
        i += 1
    path = _compiled(tmp_path, "\n".join(found) + "\n")
    lst = open_list("domain", str(path))
    assert [lst.lookup(n).entry for n in found] == found
    assert lst.lookup("w.example") is None


def test_long_keys_and_redirects_need_longer_varints(tmp_path: Path) -> None:
    """Lengths of 1, 2 and 3 varint bytes read back exactly, for domains and urls."""
    long_host = ".".join(["a" * 60] * 4) + ".example"  # 248 bytes: 2-byte length
    redirects = {"short.example": "http://r/", "mid.example": "http://r/" + "m" * 200,
                 "big.example": "http://r/" + "b" * 20_000, long_host: "http://r/long"}
    text = "".join(f"{k} {v}\n" for k, v in redirects.items()) + "plain.example\n"
    path = _compiled(tmp_path, text)
    lst = open_list("domain", str(path))
    assert isinstance(lst, CompiledDomainList)
    for host, redirect in redirects.items():
        hit = lst.lookup("x." + host)
        assert (hit.entry, hit.redirect) == (host, redirect)
    assert lst.lookup("plain.example").redirect is None
    ks = _compiled(tmp_path, "k" * 32 + "\n")  # 32 << 2 = 128: a 2-byte varint, no suffix
    assert (tmp_path / "domains.sgb").read_bytes().endswith(bytes([128, 1]) + b"k" * 32)
    assert open_list("domain", str(ks)).lookup("k" * 32)

    urls = _compiled(tmp_path, f"u.example/a http://r/a\nu.example/b/{'p' * 300} http://r/b\n"
                               "u.example/c\n", kind="url")
    ul = open_list("url", str(urls))
    assert isinstance(ul, CompiledUrlList)
    assert len(ul) == 3
    hit = ul.lookup(parse_target(f"http://u.example/b/{'p' * 300}/q"))
    assert (hit.entry, hit.redirect) == (f"u.example/b/{'p' * 300}", "http://r/b")
    assert ul.lookup(parse_target("http://u.example/c")).redirect is None
    assert ul.lookup(parse_target("http://u.example/a")).redirect == "http://r/a"
    assert ul.lookup(parse_target("http://u.example/d")) is None


def test_url_entries_are_stored_after_their_host(tmp_path: Path) -> None:
    """An entry keeps what follows its host; lookups still match the whole entry."""
    text = "h.example/ads http://r/\nh.example\nother.example/p/q\nsub.h.example/x\n"
    path = _compiled(tmp_path, text, kind="url")
    lst = open_list("url", str(path))
    assert isinstance(lst, CompiledUrlList)
    plain = UrlList(str(path), text)
    for url in ["http://h.example/ads/1", "http://h.example/", "http://other.example/p/q/r",
                "http://other.example/p/", "http://sub.h.example/x", "http://sub.h.example/y",
                "http://h.examplex/ads", "http://www.h.example/x", "http://other.example/"]:
        a, b = plain.lookup(parse_target(url)), lst.lookup(parse_target(url))
        assert ((a.entry, a.redirect) if a else None) == ((b.entry, b.redirect) if b else None)
    hit = lst.lookup(parse_target("http://other.example/p/q/r"))
    assert (hit.entry, hit.redirect) == ("other.example/p/q", None)
    raw = (tmp_path / "urls.sgb").read_bytes()
    assert b"other.example/p/q" not in raw and b"/p/q" in raw


def test_empty_list_compiles(tmp_path: Path) -> None:
    """No entries: 16 empty slots, no suffixes, nothing found."""
    path = _compiled(tmp_path, "# nothing\n")
    lst = open_list("domain", str(path))
    assert isinstance(lst, CompiledDomainList)
    assert len(lst) == 0
    assert lst.lookup("example.com") is None
    assert os.path.getsize(str(path) + ".sgb") == tables_size(16, 0)


def test_suffixes_are_the_last_labels_that_save_most() -> None:
    """A suffix must pay for its 16-byte slot; the best 255 are kept, most saved first."""
    assert pick_suffixes({b"com": 10, b"info": 5, b"de": 3}) == [b"com", b"info"]  # 30, 20
    assert pick_suffixes({b"l" * 16: 9}) == []  # too long for a slot
    assert pick_suffixes({b"t%03d" % i: 5 for i in range(400)}) == [
        b"t%03d" % i for i in range(399, 144, -1)]  # 255 of equal gain: a fixed choice


def test_keys_with_a_suffix_match_exactly(tmp_path: Path) -> None:
    """A stored "example" + suffix "com" is example.com, nothing that only looks like it."""
    listed = [f"site{i}.com" for i in range(40)] + ["com.net", "com", "a..com", "x.com.com"]
    path = _compiled(tmp_path, "\n".join(listed) + " \nredir.com http://r/\n")
    lst = open_list("domain", str(path))
    assert isinstance(lst, CompiledDomainList)
    with open(str(path) + ".sgb", "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        assert suffix_table(mm) == [b"com"]
    text = DomainList(str(path), path.read_text())
    probes = [*listed, "redir.com", "site1xcom", "site1.co", "site1.comm", "ite1.com",
              "www.site3.com", "site40.com", "net", "com.net.org", "b.com", "x.com",
              "www.a..com", "site1.com.", "redir.com.evil.org"]
    for host in probes:
        a, b = text.lookup(host), lst.lookup(host)
        assert (a.entry, a.redirect) == (b.entry, b.redirect) if a else b is None, host
    assert lst.lookup("www.redir.com").redirect == "http://r/"


def test_compiled_file_is_smaller_than_the_text(tmp_path: Path) -> None:
    """2 bytes of tag a slot at 70 % load, 4 bytes per 16 slots; a key of NAME.com
    costs a length byte, a suffix byte and NAME."""
    rnd = random.Random(3)
    names = sorted({"".join(rnd.choices(string.ascii_lowercase, k=12)) + ".com"
                    for _ in range(20_000)})
    path = _compiled(tmp_path, "\n".join(names) + "\n")
    size = os.path.getsize(str(path) + ".sgb")
    assert size == tables_size(slot_count(len(names)), 1) + sum(2 + 12 for _ in names)
    assert size < 1.05 * path.stat().st_size
    lst = open_list("domain", str(path))
    text = DomainList(str(path), path.read_text())
    for host in [*names[::97], "zz.com", "a.b.c"]:
        a, b = text.lookup(host), lst.lookup(host)
        assert (a.entry if a else None) == (b.entry if b else None)


def test_list_too_big_to_compile_is_refused_and_read_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the size limit: -C says so, and a rebuild at start falls back to the text."""
    from squidguard_bloom.core.lists import writer
    from squidguard_bloom.core.lists.errors import ListError

    path = _compiled(tmp_path, "a.example\n")
    path.write_text("a.example\nb.example\n")
    monkeypatch.setattr(writer, "MAX_FILE", 100)
    with pytest.raises(ListError, match=r"domains: too big to compile \(\d+ bytes; the limit"):
        compile_list("domain", str(path))
    notes: list[str] = []
    lst = open_list("domain", str(path), notes)
    assert isinstance(lst, DomainList)
    assert lst.lookup("b.example")
    assert "rebuilding it failed" in notes[0] and "text list is used" in notes[0]
