"""Model-based test of the Follower: real files, an in-memory monitor, a model of what was written.

Operations: append lines (sometimes without the final newline), rotate by
rename (logrotate ``create``), copytruncate, truncate in place without a copy,
lose a connection with writes in flight, persist the checkpoint, crash and
restart from the last persisted checkpoint, lose the checkpoint (the follower
then adopts the monitor's segment of the live file), let time pass. The "monitor" is a
dict of byte arrays written at explicit offsets; every rewrite must carry the
bytes already there (so a resend can never change or double anything).

Invariants, checked after draining: every remote segment equals the bytes of
exactly one local generation (a prefix of it when the file was truncated
without a copy, complete lines only for the live file), and every finished
non-empty generation has its segment.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from squidguard_bloom.shipper.checkpoint import CheckpointFile
from squidguard_bloom.shipper.follow import Follower

ROTATE_WAIT = 5.0
BATCH = 37  # tiny, so one generation takes many chunks


class Gen:
    """One local generation as the model knows it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.seen = 0  # bytes the follower has had a chance to look at
        self.finished = False
        self.lossy = False


class FollowerModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="follow-model-"))
        self.path = self.dir / "app.log"
        self.path.touch()
        self.mtime = 1_700_000_000_000_000_000
        self._touch(self.path)
        self.cpfile = CheckpointFile(self.dir / "checkpoint.json")
        self.now = 0.0
        self.remote: dict[str, bytearray] = {}
        self.gens = [Gen()]
        self.counter = 0
        self._start()

    def _start(self) -> None:
        self.cp = self.cpfile.load()
        state = self.cp.stream("app", str(self.path))
        self.follower = Follower(
            "app",
            self.path,
            state,
            rotate_wait=ROTATE_WAIT,
            clock=lambda: self.now,
            persist=lambda: self.cpfile.save(self.cp),
        )
        if not state.segments:  # as the shipper does: look at the monitor first
            listing = [(n.split("/", 1)[1], len(buf)) for n, buf in self.remote.items()]
            found = self.follower.adopt(listing)
            if found is not None:
                seg, windows = found
                buf = self.remote[seg.remote]
                if all(buf[off : off + len(data)] == data for off, data in windows):
                    self.follower.take_over(seg)
        seg = self.follower.current()
        if seg is not None:
            remote = self.remote.get(seg.remote)
            self.follower.rewind(None if remote is None else len(remote), check=True)

    def _touch(self, path: Path) -> None:
        # Each change gets a distinct, increasing mtime, as when real time passes
        # between operations (the kernel's coarse clock could otherwise tie them).
        self.mtime += 1_000_000
        os.utime(path, ns=(self.mtime, self.mtime))

    def _apply(self, chunk_remote: str, offset: int, data: bytes) -> None:
        buf = self.remote.setdefault(chunk_remote, bytearray())
        assert offset <= len(buf), f"gap in {chunk_remote}: write at {offset}, size {len(buf)}"
        overlap = bytes(buf[offset : offset + len(data)])
        assert overlap == data[: len(overlap)], f"resend changed bytes of {chunk_remote}"
        buf[offset : offset + len(data)] = data

    def _pump(self, limit: int = 10_000, deliver: int | None = None) -> None:
        for i in range(limit):
            chunk = self.follower.poll(BATCH)
            if chunk is None:
                break
            if deliver is not None and i >= deliver:
                continue  # sent, never answered: in flight when the link died
            if chunk.data:
                self._apply(chunk.segment.remote, chunk.offset, chunk.data)
            self.follower.acknowledge(chunk)
        for gen in self.gens:
            if not gen.finished or gen is self.gens[-1]:
                gen.seen = len(gen.data)

    @rule(text=st.binary(max_size=30), newline=st.booleans())
    def write(self, text: bytes, newline: bool) -> None:
        self.counter += 1
        line = b"%06d:" % self.counter + text.replace(b"\n", b" ") + (b"\n" if newline else b"")
        with open(self.path, "ab") as fh:
            fh.write(line)
        self._touch(self.path)
        self.gens[-1].data += line

    def _shift(self) -> None:
        names = sorted(
            (int(p.name.rsplit(".", 1)[1]) for p in self.dir.glob("app.log.*")), reverse=True
        )
        for n in names:
            os.rename(self.dir / f"app.log.{n}", self.dir / f"app.log.{n + 1}")

    @rule()
    def rotate_rename(self) -> None:
        self._shift()
        os.rename(self.path, self.dir / "app.log.1")
        self.path.touch()
        self._touch(self.path)
        self.gens[-1].finished = True
        self.gens.append(Gen())

    @precondition(lambda self: self.gens[-1].seen > 0)
    @rule()
    def copytruncate(self) -> None:
        self._shift()
        shutil.copyfile(self.path, self.dir / "app.log.1")
        self._touch(self.dir / "app.log.1")
        os.truncate(self.path, 0)
        self._touch(self.path)
        self.gens[-1].finished = True
        self.gens.append(Gen())

    @precondition(lambda self: self.gens[-1].seen > 0)
    @rule()
    def truncate_without_copy(self) -> None:
        os.truncate(self.path, 0)
        self._touch(self.path)
        self.gens[-1].finished = True
        self.gens[-1].lossy = True
        self.gens.append(Gen())

    @rule()
    def ship(self) -> None:
        self._pump()

    @rule(deliver=st.integers(min_value=0, max_value=3))
    def link_lost_with_writes_in_flight(self, deliver: int) -> None:
        self._pump(limit=deliver + 3, deliver=deliver)
        seg = self.follower.current()
        if seg is not None:
            remote = self.remote.get(seg.remote)
            self.follower.rewind(None if remote is None else len(remote), check=True)

    @rule()
    def persist(self) -> None:
        self.cpfile.save(self.cp)

    @rule()
    def crash_and_restart(self) -> None:
        self.follower.close()
        self._start()

    @rule()
    def lose_checkpoint_and_restart(self) -> None:
        """checkpoint.json deleted while the shipper is down: rotated generations not
        shipped to their end stay incomplete (documented), but nothing is doubled."""
        self.follower.close()
        for gen in self.gens[:-1]:
            if gen.data and bytes(gen.data) not in [bytes(b) for b in self.remote.values()]:
                gen.lossy = True
        self.cpfile.path.unlink(missing_ok=True)
        self.cpfile.tmp.unlink(missing_ok=True)
        self._start()

    @rule()
    def time_passes(self) -> None:
        self.now += ROTATE_WAIT + 1

    def _segments(self) -> list[tuple[str, bytes]]:
        return sorted((name, bytes(buf)) for name, buf in self.remote.items())

    @invariant()
    def segments_are_prefixes_of_one_generation(self) -> None:
        for name, data in self._segments():
            owners = [g for g in self.gens if g.data.startswith(data)]
            assert owners, f"{name} holds bytes that no local generation holds: {data[:80]!r}"

    def teardown(self) -> None:
        try:
            # Each rotated generation waits out its own grace period.
            for _ in range(len(self.gens) + 2):
                self.now += ROTATE_WAIT + 1
                self._pump()
            segments = self._segments()
            used: set[int] = set()
            for name, data in segments:
                idx = next(i for i, g in enumerate(self.gens) if data and g.data.startswith(data))
                assert idx not in used, f"two segments for one generation ({name})"
                used.add(idx)
                gen = self.gens[idx]
                if gen is self.gens[-1]:
                    # Every complete line is shipped; what is left is an unterminated
                    # line shorter than a batch (longer ones go out in pieces).
                    tail = bytes(gen.data[len(data) :])
                    assert b"\n" not in tail, f"{name}: live file not shipped to its last line"
                    assert len(tail) < BATCH, f"{name}: an over-long line was held back"
                elif not gen.lossy:
                    assert data == bytes(gen.data), f"{name}: finished generation differs"
            for i, gen in enumerate(self.gens[:-1]):
                if gen.data and not gen.lossy:
                    assert i in used, f"generation {i} ({len(gen.data)} bytes) never shipped"
        finally:
            self.follower.close()
            shutil.rmtree(self.dir, ignore_errors=True)


FollowerModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestFollowerModel = FollowerModel.TestCase
