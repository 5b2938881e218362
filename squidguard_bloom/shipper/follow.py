"""Following one local log file through writes, rotations and truncations.

A *stream* is one configured path; a *generation* is one local file from its
creation to its rotation, identified by (st_dev, st_ino) plus a SHA-256 of its
first bytes (up to ``HEAD_MAX``, extended while a young file grows), because
inode numbers are reused. Each generation is shipped into its own remote
*segment* at the same offsets, so the remote bytes equal the local ones.

The ``Follower`` hands out ``Chunk``s (segment, offset, bytes) of complete
lines, keeps reading the old file after a rename until it has been quiet for
``rotate_wait`` seconds, recovers the tail of a copy-truncated file from the
rotated copy, and only moves to the next generation once the last chunk of the
current one is acknowledged. It never writes to, renames or deletes local files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from squidguard_bloom.shipper.checkpoint import Segment, StreamState

HEAD_MAX = 4096
SEGMENT_NAME = re.compile(r"(\d{8,})-([0-9a-f]+)-([0-9a-f]+)\.log")
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z", ".zip")

log = logging.getLogger("squidguard_bloom.shipper")


@dataclass(frozen=True)
class Chunk:
    """Bytes of one generation to be written at ``offset`` of its segment."""

    segment: Segment
    offset: int
    data: bytes
    closes: bool = False

    @property
    def end(self) -> int:
        """Offset just past this chunk."""
        return self.offset + len(self.data)


@dataclass
class _Reading:
    """The generation being read: its segment, descriptor and read position."""

    seg: Segment
    fd: int | None
    read_pos: int
    final: bool = False  # nothing more will be appended (a rotated copy)
    last_size: int = -1
    last_growth: float = 0.0
    closing_sent: bool = False
    rotated_logged: bool = False
    lost_after: int = -1  # fd gone (truncated without copy): bytes past this are lost


def segment_name(seq: int, st: os.stat_result) -> str:
    """The remote file name of generation ``seq`` with identity ``st``."""
    return f"{seq:08d}-{st.st_dev:x}-{st.st_ino:x}.log"


def _head_hash(fd: int, length: int) -> str:
    return hashlib.sha256(os.pread(fd, length, 0) if length else b"").hexdigest()


def _matches(fd: int, st: os.stat_result, seg: Segment, *, same_inode: bool) -> bool:
    if same_inode and (st.st_dev, st.st_ino) != (seg.dev, seg.ino):
        return False
    if not same_inode and seg.head_len == 0:
        return False  # an empty head proves nothing about content
    return st.st_size >= seg.head_len and _head_hash(fd, seg.head_len) == seg.head_sha256


class Follower:
    """Tails one path and turns its generations into chunks for remote segments."""

    def __init__(
        self,
        name: str,
        path: Path,
        state: StreamState,
        *,
        rotate_wait: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        persist: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.path = path
        self.state = state
        self.rotate_wait = rotate_wait
        self.clock = clock
        self.persist = persist
        self._cur: _Reading | None = None
        self._missing_logged = False
        self.behind_since: float | None = None

    # -- public API -------------------------------------------------------

    def current(self) -> Segment | None:
        """Open (if needed) and return the segment now being shipped, or None if there is none."""
        if self._cur is None:
            self._open_next()
        return self._cur.seg if self._cur else None

    def poll(self, max_bytes: int) -> Chunk | None:
        """Return the next chunk to ship, or None when there is nothing to send now.

        Only complete lines are returned, except for a line longer than
        ``max_bytes`` (sent in pieces) and the unterminated remainder of a
        finished generation (so the segment ends exactly like the local file).
        """
        cur = self._cur
        if cur is None:
            if not self._open_next():
                return None
            cur = self._cur
            assert cur is not None
        if cur.closing_sent:
            return None
        size = self._check_size(cur) if cur.fd is not None else 0
        if self._cur is not cur:
            return self.poll(max_bytes)
        if cur.fd is None:
            return self._close_lost(cur)
        return self._read(cur, size, max_bytes)

    def _read(self, cur: _Reading, size: int, max_bytes: int) -> Chunk | None:
        assert cur.fd is not None
        if cur.read_pos < size:
            if self.behind_since is None:
                self.behind_since = self.clock()
            data = os.pread(cur.fd, min(max_bytes, size - cur.read_pos), cur.read_pos)
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) == max_bytes:
                cut = len(data)  # one line longer than a batch: ship it in pieces
            if cut:
                chunk = Chunk(cur.seg, cur.read_pos, data[:cut])
                cur.read_pos += cut
                return chunk
        finished = cur.final or (
            self._rotated_away(cur) and self.clock() - cur.last_growth >= self.rotate_wait
        )
        if not finished:
            return None
        rest = os.pread(cur.fd, max(0, size - cur.read_pos), cur.read_pos)
        cur.closing_sent = True
        return Chunk(cur.seg, cur.read_pos, rest, closes=True)

    def acknowledge(self, chunk: Chunk) -> None:
        """Record that the monitor holds ``chunk``; finish the generation on its last chunk."""
        cur = self._cur
        if cur is None or chunk.segment is not cur.seg or chunk.offset > cur.seg.acked:
            return  # stale: from before a rewind
        cur.seg.acked = max(cur.seg.acked, chunk.end)
        if chunk.closes:
            self._finish(cur)
        elif cur.seg.acked >= cur.last_size:
            self.behind_since = None

    def rewind(self, remote_size: int | None = None, *, check: bool = False) -> None:
        """Forget unacknowledged reads; with ``check``, reconcile with the segment's remote size.

        ``remote_size`` is the size the monitor reports for the current
        segment (None: missing). Smaller than the acknowledged offset means
        the monitor lost bytes: they are re-sent from the local file.
        Larger is never trusted: sending restarts at the acknowledged offset
        and rewrites the same bytes.
        """
        cur = self._cur
        if cur is None:
            return
        seg = cur.seg
        if check and seg.acked > 0:
            if remote_size is None:
                log.warning(
                    "%s: remote segment %s is missing on the monitor (deleted or renamed "
                    "there?); re-sending its %d bytes from offset 0",
                    self.name,
                    seg.remote,
                    seg.acked,
                )
                seg.acked = 0
            elif remote_size < seg.acked:
                log.warning(
                    "%s: remote segment %s holds %d bytes but %d were acknowledged "
                    "(monitor crash or truncation); re-sending the difference",
                    self.name,
                    seg.remote,
                    remote_size,
                    seg.acked,
                )
                seg.acked = remote_size
        cur.read_pos = seg.acked
        cur.closing_sent = False

    def local_bytes(self, offset: int, length: int) -> bytes | None:
        """``length`` bytes of the current generation from ``offset``; None if not all readable."""
        cur = self._cur
        if cur is None or cur.fd is None:
            return None
        data = os.pread(cur.fd, length, offset)
        return data if len(data) == length else None

    def resend_all(self, reason: str) -> None:
        """Ship the current generation again from offset 0 (its remote copy was altered)."""
        cur = self._cur
        if cur is None:
            return
        log.warning(
            "%s: %s; rewriting %s from offset 0 with the local bytes (%d bytes)",
            self.name,
            reason,
            cur.seg.remote,
            cur.seg.acked,
        )
        cur.seg.acked = 0
        cur.read_pos = 0
        cur.closing_sent = False
        self.persist()

    def adopt(
        self, listing: list[tuple[str, int]]
    ) -> tuple[Segment, list[tuple[int, bytes]]] | None:
        """With no checkpoint state for this file, take the monitor's listing into account.

        Segment numbers continue after the highest one there, so the monitor's
        name order stays the order of generations. If the newest segment
        carrying the live file's device and inode is not longer than the file,
        it is returned as a candidate with (offset, local bytes) windows at its
        head and its end: the caller compares them with the remote bytes and
        calls ``take_over`` when they match.
        """
        found = [(m, size) for name, size in listing if (m := SEGMENT_NAME.fullmatch(name))]
        if not found:
            return None
        self.state.next_seq = max(self.state.next_seq, *(int(m[1]) + 1 for m, _ in found))
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            ident = (f"{st.st_dev:x}", f"{st.st_ino:x}")
            mine = [(m, size) for m, size in found if (m[2], m[3]) == ident]
            if not mine:
                return None
            m, size = max(mine, key=lambda ms: int(ms[0][1]))
            if size > st.st_size:
                return None
            head = min(size, HEAD_MAX)
            tail = max(head, size - HEAD_MAX)
            windows = [(0, os.pread(fd, head, 0)), (tail, os.pread(fd, size - tail, tail))]
        finally:
            os.close(fd)
        seg = Segment(
            seq=int(m[1]),
            remote=f"{self.name}/{m[0]}",
            dev=st.st_dev,
            ino=st.st_ino,
            head_len=head,
            head_sha256=hashlib.sha256(windows[0][1]).hexdigest(),
            acked=size,
            mtime_ns=st.st_mtime_ns,
        )
        return seg, windows

    def take_over(self, seg: Segment) -> None:
        """Continue the remote segment ``seg`` (checked by the caller) with the live file."""
        log.warning(
            "%s: no checkpoint for %s; continuing the monitor's %s at offset %d (its bytes "
            "match the local file); later segments are numbered from %d",
            self.name,
            self.path,
            seg.remote,
            seg.acked,
            self.state.next_seq,
        )
        self.state.segments.append(seg)
        self.persist()

    def rotation_pending(self) -> bool:
        """True while a rotated-away generation waits out ``rotate_wait`` before it is finished."""
        cur = self._cur
        return (
            cur is not None and cur.fd is not None and not cur.final and (self._rotated_away(cur))
        )

    def close(self) -> None:
        """Close the open descriptor (the checkpoint keeps the position)."""
        if self._cur is not None and self._cur.fd is not None:
            os.close(self._cur.fd)
        self._cur = None

    def lag_bytes(self) -> int:
        """Bytes of the current generation not yet acknowledged by the monitor."""
        cur = self._cur
        if cur is None or cur.fd is None:
            return 0
        return max(0, cur.last_size - cur.seg.acked)

    # -- generations -------------------------------------------------------

    def _check_size(self, cur: _Reading) -> int:
        """fstat the generation; handle truncation/replacement; extend a young head."""
        assert cur.fd is not None
        st = os.fstat(cur.fd)
        seg = cur.seg
        shrunk = st.st_size < max(cur.read_pos, seg.head_len)
        if not cur.final and (shrunk or _head_hash(cur.fd, seg.head_len) != seg.head_sha256):
            self._on_truncated(cur, st)
            return cur.last_size
        if st.st_size != cur.last_size:
            cur.last_size = st.st_size
            cur.last_growth = self.clock()
        if seg.head_len < HEAD_MAX and st.st_size > seg.head_len:
            seg.head_len = min(st.st_size, HEAD_MAX)
            seg.head_sha256 = _head_hash(cur.fd, seg.head_len)
            # The saved head must cover every byte that may reach the monitor,
            # or a restart could take other content for this generation.
            self.persist()
        return st.st_size

    def _on_truncated(self, cur: _Reading, st: os.stat_result) -> None:
        """Same inode, other content: take the old tail from the rotated copy if there is one."""
        seg = cur.seg
        old_fd = cur.fd
        copy = self._find(seg, same_inode=False)
        if copy is not None:
            fd, cst = copy
            log.warning(
                "%s: %s was truncated in place (copytruncate); finishing segment %s from "
                "the rotated copy",
                self.name,
                self.path,
                seg.remote,
            )
            cur.fd, cur.final = fd, True
            cur.last_size = cst.st_size
        else:
            lost = max(0, cur.last_size - cur.read_pos)
            log.warning(
                "%s: %s shrank to %d bytes below the read position %d and no rotated copy "
                "was found; %d unread bytes of the old content are lost; continuing with "
                "the new content",
                self.name,
                self.path,
                st.st_size,
                cur.read_pos,
                lost,
            )
            cur.fd, cur.lost_after = None, cur.read_pos
        if old_fd is not None:
            os.close(old_fd)

    def _close_lost(self, cur: _Reading) -> Chunk | None:
        if cur.read_pos < cur.lost_after:
            log.warning(
                "%s: %d bytes of %s could not be re-read after the file was truncated; "
                "they are lost",
                self.name,
                cur.lost_after - cur.read_pos,
                cur.seg.remote,
            )
            cur.lost_after = cur.read_pos
        cur.closing_sent = True
        return Chunk(cur.seg, cur.read_pos, b"", closes=True)

    def _rotated_away(self, cur: _Reading) -> bool:
        """True when the path no longer names this generation (renamed or deleted)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if not cur.rotated_logged:
                cur.rotated_logged = True
                log.warning(
                    "%s: %s disappeared; shipping what is still readable from the open file "
                    "(%d more bytes) to %s, then waiting for the file to reappear",
                    self.name,
                    self.path,
                    max(0, cur.last_size - cur.read_pos),
                    cur.seg.remote,
                )
            return True
        gone = (st.st_dev, st.st_ino) != (cur.seg.dev, cur.seg.ino)
        if gone and not cur.rotated_logged:
            cur.rotated_logged = True
            log.info(
                "%s: %s was rotated; shipping the rest of the old file to %s before the new one",
                self.name,
                self.path,
                cur.seg.remote,
            )
        return gone

    def _finish(self, cur: _Reading) -> None:
        seg = cur.seg
        seg.closed = True
        if cur.fd is not None:
            seg.mtime_ns = os.fstat(cur.fd).st_mtime_ns
            os.close(cur.fd)
        self._cur = None
        self.behind_since = None
        self.state.prune()
        self.persist()

    def _open_next(self) -> bool:
        """Attach to the open segment of the checkpoint, or start the next generation."""
        while (seg := self.state.open_segment()) is not None:
            found = self._find(seg, same_inode=True)
            final = False
            if found is None:
                found = self._find(seg, same_inode=False)
                final = found is not None
            if found is None:
                try:
                    st = os.stat(self.path)
                    same = (st.st_dev, st.st_ino) == (seg.dev, seg.ino)
                except OSError:
                    same = False
                log.warning(
                    "%s: the local file of segment %s (dev %d, inode %d) is gone%s; %d bytes "
                    "of it were shipped, anything it held past them is lost",
                    self.name,
                    seg.remote,
                    seg.dev,
                    seg.ino,
                    f" ({self.path} has that inode but other first bytes: rewritten in place "
                    "or a reused inode; it is shipped as a new file)"
                    if same
                    else "",
                    seg.acked,
                )
                seg.closed = True
                self.persist()
                continue
            fd, st = found
            if st.st_size < seg.acked:
                log.warning(
                    "%s: %s is shorter (%d) than the %d bytes already shipped; closing it",
                    self.name,
                    seg.remote,
                    st.st_size,
                    seg.acked,
                )
                os.close(fd)
                seg.closed = True
                self.persist()
                continue
            self._cur = _Reading(seg, fd, seg.acked, final, st.st_size, self.clock())
            return True
        return self._start_generation()

    def _start_generation(self) -> bool:
        known = self.state.segments
        candidates: list[tuple[int, tuple[int, int, str], Path]] = []
        if known:
            # Files rotated while the shipper was away, oldest first, then the path.
            since = max(s.mtime_ns for s in known)
            for sib in self._siblings():
                try:
                    st = sib.stat()
                except OSError:
                    continue
                if st.st_size and st.st_mtime_ns >= since:
                    candidates.append((st.st_mtime_ns, self._age_key(sib), sib))
        candidates.sort()
        for *_, candidate in [*candidates, (0, (0, 0, ""), self.path)]:
            try:
                fd = os.open(candidate, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("%s: cannot open %s: %s", self.name, candidate, exc.strerror)
                continue
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or any(
                _matches(fd, st, s, same_inode=True) or _matches(fd, st, s, same_inode=False)
                for s in known
            ):
                os.close(fd)
                continue
            head_len = min(st.st_size, HEAD_MAX)
            seq = self.state.next_seq
            seg = Segment(
                seq=seq,
                remote=f"{self.name}/{segment_name(seq, st)}",
                dev=st.st_dev,
                ino=st.st_ino,
                head_len=head_len,
                head_sha256=_head_hash(fd, head_len),
                # Until it is finished, the generation's mtime when first seen: rotated
                # files older than that are history (see ``since`` above), even if this
                # generation later disappears without being finished.
                mtime_ns=st.st_mtime_ns,
            )
            self.state.next_seq += 1
            self.state.segments.append(seg)
            self._cur = _Reading(seg, fd, 0, False, st.st_size, self.clock())
            self._missing_logged = False
            self.persist()  # known before any byte of it can reach the monitor
            if candidate != self.path:
                log.info("%s: shipping rotated file %s as %s", self.name, candidate, seg.remote)
            return True
        if not self._missing_logged and not self.path.exists():
            self._missing_logged = True
            log.warning("%s: %s does not exist (yet); waiting for it", self.name, self.path)
        return False

    def _siblings(self) -> list[Path]:
        """Uncompressed rotated names of the path: NAME.1, NAME-20250101 and the like."""
        base = self.path.name
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return []
        return [
            self.path.parent / n
            for n in names
            if n != base and n.startswith((base + ".", base + "-")) and not n.endswith(COMPRESSED)
        ]

    def _age_key(self, sibling: Path) -> tuple[int, int, str]:
        """Order rotated names oldest first: NAME.3 before NAME.2; dates sort as text."""
        suffix = sibling.name[len(self.path.name) + 1 :].split(".")[0]
        return (0, -int(suffix), "") if suffix.isdigit() else (1, 0, sibling.name)

    def _find(self, seg: Segment, *, same_inode: bool) -> tuple[int, os.stat_result] | None:
        """Open the file holding ``seg``'s generation: by inode and head, or by head only."""
        for candidate in [self.path, *sorted(self._siblings())]:
            try:
                fd = os.open(candidate, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            st = os.fstat(fd)
            other_inode = (st.st_dev, st.st_ino) != (seg.dev, seg.ino)
            if (
                stat.S_ISREG(st.st_mode)
                and (same_inode or other_inode)
                and _matches(fd, st, seg, same_inode=same_inode)
            ):
                return fd, st
            os.close(fd)
        return None
