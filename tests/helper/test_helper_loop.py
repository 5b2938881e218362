"""The helper loop: one reply per line, in step, with channel-IDs, whatever comes in."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from squidguard_bloom.helper.loop import MAX_LINE, serve


class Trickle(io.RawIOBase):
    """A stream that hands out its data in the given chunk sizes (like a socket)."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.sizes, self.pos = data, sizes or [len(data) or 1], 0

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        size = self.sizes[self.pos % len(self.sizes)] if self.sizes else n
        self.sizes = self.sizes[1:] + self.sizes[:1]
        out = self.data[self.pos : self.pos + max(1, min(size, n))]
        self.pos += len(out)
        return out


def run(helper, data: bytes, sizes: list[int] | None = None) -> list[bytes]:
    out = io.BytesIO()
    assert serve(helper, Trickle(data, sizes or []), out) == 0
    return out.getvalue().split(b"\n")[:-1]


def test_first_get_is_welcomed_then_passes(make_helper) -> None:
    """A new client's first GET goes to the welcome page (with %u and %a), then passes."""
    helper = make_helper()
    replies = run(helper, b"http://site.example/a 10.0.0.1/- - GET\n"
                          b"http://site.example/b 10.0.0.1/- - GET\n")
    assert replies == [
        b'OK status=302 url="http://welcome.example/?next=http://site.example/a&c=10.0.0.1"',
        b"ERR",
    ]


def test_blacklist_comes_first_and_always_blocks(make_helper) -> None:
    """A blocked URL is blocked for a new client without using up its welcome."""
    helper = make_helper()
    replies = run(helper, b"http://bad.example/ 10.0.0.2/- - GET\n"
                          b"http://bad.example/ 10.0.0.2/- - GET\n"
                          b"http://ok.example/ 10.0.0.2/- - GET\n")
    assert replies[0] == replies[1] == (
        b'OK status=302 url="http://block.example/?u=http://bad.example/"')
    assert replies[2] == (
        b'OK status=302 url="http://welcome.example/?next=http://ok.example/&c=10.0.0.2"')


def test_only_get_and_head_are_welcomed(make_helper) -> None:
    """CONNECT and POST from a new client pass, and do not use up the welcome."""
    helper = make_helper()
    replies = run(helper, b"site.example:443 10.0.0.3/- - CONNECT\n"
                          b"http://site.example/form 10.0.0.3/- - POST\n"
                          b"http://site.example/ 10.0.0.3/- - HEAD\n")
    assert replies[:2] == [b"ERR", b"ERR"]
    assert replies[2] == (
        b'OK status=302 url="http://welcome.example/?next=http://site.example/&c=10.0.0.3"')


def test_welcome_and_block_hosts_never_loop(make_helper) -> None:
    """Requests to the welcome page's own host pass even for a new client."""
    helper = make_helper()
    replies = run(helper, b"http://welcome.example/?next=x 10.0.0.4/- - GET\n"
                          b"http://block.example/ 10.0.0.5/- - GET\n")
    assert replies == [b"ERR", b"ERR"]


def test_blocked_connect_gets_a_redirect_never_a_rewrite(make_helper) -> None:
    """A rewrite decision on a CONNECT is answered as a 302 (fails at once)."""
    helper = make_helper(welcome=False)
    replies = run(helper, b"old.example:443 10.0.0.6/- - CONNECT\n"
                          b"http://old.example/ 10.0.0.6/- - GET\n")
    assert replies == [b'OK status=302 url="http://new.example/"',
                       b'OK rewrite-url="http://new.example/"']


def test_channel_ids_are_echoed(make_helper) -> None:
    """Every reply carries its request's channel-ID, byte for byte."""
    helper = make_helper()
    replies = run(helper, b"1 http://a.example/ 10.0.0.7/- - GET myip=1 myport=2\n"
                          b"0002 http://a.example/ 10.0.0.7/- - GET\n"
                          b"77 http://bad.example/ 10.0.0.7/- - GET\n")
    assert [r.split(b" ", 1)[0] for r in replies] == [b"1", b"0002", b"77"]
    assert replies[1] == b"0002 ERR"


def test_bad_lines_get_well_formed_replies(make_helper) -> None:
    """Empty, binary, non-UTF-8 and short lines are answered; the loop goes on."""
    helper = make_helper()
    data = (b"\n \n\xff\xfe\x00garbage\n5\n9 \xc3\x28 x\nhttp://ok.example/\n"
            b"http://boom.example/ 10.0.0.8/- - GET\nhttp://bad.example/ 1.2.3.4/- - GET\n")
    replies = run(helper, data)
    assert len(replies) == 8
    assert replies[0] == b'ERR message="empty request line"'
    assert replies[3] == b'5 ERR message="empty request"'
    assert replies[4] == b"9 ERR"  # an undecodable URL is passed, as squidGuard passes it
    assert replies[6] == b'BH message="internal error: RuntimeError"'
    assert replies[7] == b'OK status=302 url="http://block.example/?u=http://bad.example/"'


def test_crlf_and_missing_final_newline(make_helper) -> None:
    """CRLF line ends are accepted and a last line without newline is answered."""
    helper = make_helper(welcome=False)
    assert run(helper, b"http://bad.example/ 1.1.1.1/- - GET\r\nhttp://x.example/ 1.1.1.1") == [
        b'OK status=302 url="http://block.example/?u=http://bad.example/"', b"ERR"]


def test_huge_line_gets_one_reply_and_keeps_step(make_helper) -> None:
    """A line over MAX_LINE is answered once (with its channel-ID) and the next is fine."""
    helper = make_helper(welcome=False)
    data = b"3 http://x.example/" + b"a" * (MAX_LINE + 10) + b" 1.1.1.1/- - GET\n"
    data += b"4 http://bad.example/ 1.1.1.1/- - GET\n"
    replies = run(helper, data, [65536])
    assert replies == [b'3 ERR message="request line too long"',
                       b'4 OK status=302 url="http://block.example/?u=http://bad.example/"']


def test_one_megabyte_line_is_decided(make_helper) -> None:
    """A 1 MB request line is still read whole and decided."""
    helper = make_helper(welcome=False)
    data = b"http://bad.example/" + b"b" * 1_000_000 + b" 1.1.1.1/- - GET\n"
    (reply,) = run(helper, data, [4096])
    assert reply.startswith(b'OK status=302 url="http://block.example/?u=http://bad.example/bbb')


def test_welcome_log_line(make_helper, tmp_path: Path) -> None:
    """First-visit redirects are logged in squidGuard's Request(...) format."""
    helper = make_helper()
    run(helper, b"http://a.example/x 10.9.9.9/- bob GET\n")
    helper.rt.sink.flush()
    text = (tmp_path / "welcome.log").read_text()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[\d+\] "
        r"Request\(default/welcome/-\) http://a.example/x 10.9.9.9/- bob GET WELCOME\n", text)
    assert f"[{os.getpid()}]" in text


request_lines = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 10**9)),
        st.binary(max_size=120).map(lambda b: b.replace(b"\n", b"")),
        st.sampled_from([
            b"", b"http://bad.example/x 10.0.0.1/- - GET", b"http://ok.example/ 10.0.0.9/- - GET",
            b"h:443 ::1 - CONNECT", b"http://boom.example/ a b c",
        ]),
    ),
    max_size=40,
)


@settings(max_examples=150)
@given(request_lines, st.lists(st.integers(1, 300), max_size=5))
def test_fuzz_one_reply_per_request_in_step(make_helper, reqs: list, sizes: list[int]) -> None:
    """Random request lines, split at random points: exactly one reply each, in order,
    each starting with its channel-ID, each a valid Squid reply."""
    helper = make_helper()
    lines = []
    for channel, noise, good in reqs:
        body = good or noise
        lines.append(body if channel is None else str(channel).encode() + b" " + body)
    data = b"".join(line + b"\n" for line in lines)
    replies = run(helper, data, sizes)
    assert len(replies) == len(lines)
    for line, reply, (channel, _, good) in zip(lines, replies, reqs, strict=True):
        if channel is not None and line.split(b" ", 1)[1:] != [b""]:
            assert reply.startswith(str(channel).encode() + b" "), (line, reply)
        assert re.fullmatch(rb'(\d+ )?(ERR( message="[^"\\\n]*")?|OK (status=30[12378] url|'
                            rb'rewrite-url)="([^"\\\n]|\\.)*"|BH message="[^"\n]*")', reply)
        if good.startswith(b"http://bad"):
            assert b"block.example" in reply
