"""The local checkpoint: which remote segment receives which local file, and how far.

A small, versioned JSON file, readable and editable by an administrator. It is
replaced atomically (write ``NAME.tmp``, fsync, rename over ``NAME``, fsync the
directory), so a crash or ``kill -9`` at any moment leaves either the old or
the new version. A left-over ``NAME.tmp`` that parses completely is newer than
``NAME`` and wins at load time.

The checkpoint may lag behind what the monitor holds: remote writes are
positional, so resending from an older offset rewrites the same bytes in the
same place. It therefore decides how much is re-sent, never whether data is
lost or doubled.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from squidguard_bloom.shipper.errors import CheckpointError

VERSION = 1
# How many finished segments stay listed per stream: they let the follower
# recognise rotated copies it has already shipped.
KEEP_CLOSED = 8


@dataclass
class Segment:
    """One local file generation and the remote file that receives it byte for byte."""

    seq: int
    remote: str
    dev: int
    ino: int
    head_len: int
    head_sha256: str
    acked: int = 0
    closed: bool = False
    mtime_ns: int = 0


@dataclass
class StreamState:
    """Per configured log file: its path, the next segment number and its segments."""

    path: str
    next_seq: int = 1
    segments: list[Segment] = field(default_factory=list)

    def open_segment(self) -> Segment | None:
        """Return the segment still being shipped, if any."""
        for seg in self.segments:
            if not seg.closed:
                return seg
        return None

    def prune(self) -> None:
        """Forget all but the newest ``KEEP_CLOSED`` finished segments."""
        closed = [s for s in self.segments if s.closed]
        drop = {id(s) for s in closed[:-KEEP_CLOSED]} if len(closed) > KEEP_CLOSED else set()
        self.segments = [s for s in self.segments if id(s) not in drop]


@dataclass
class Checkpoint:
    """The whole persisted state of one shipper."""

    streams: dict[str, StreamState] = field(default_factory=dict)

    def stream(self, name: str, path: str) -> StreamState:
        """Return the state of stream ``name``, creating it when new."""
        state = self.streams.get(name)
        if state is None:
            state = self.streams[name] = StreamState(path=path)
        state.path = path
        return state

    def to_json(self) -> str:
        """Serialise to the documented JSON form."""
        doc = {"version": VERSION, "streams": {k: asdict(v) for k, v in self.streams.items()}}
        return json.dumps(doc, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, origin: str) -> Checkpoint:
        """Parse the JSON form; raise ``CheckpointError`` naming ``origin`` if it is unusable."""
        try:
            doc = json.loads(text)
            if doc.get("version") != VERSION:
                raise CheckpointError(
                    f"{origin}: unsupported checkpoint version {doc.get('version')!r}; "
                    f"this shipper reads version {VERSION}"
                )
            streams = {
                name: _stream_from(raw) for name, raw in dict(doc.get("streams", {})).items()
            }
        except CheckpointError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise CheckpointError(
                f"{origin}: not a valid checkpoint ({exc}); move it away to start over: "
                "the shipper then continues the monitor's copy of each live file where it "
                "ends (after comparing its bytes) and numbers new segments after the "
                "monitor's; rotated files it had not finished are not shipped again"
            ) from exc
        return cls(streams=streams)


def _stream_from(raw: dict[str, Any]) -> StreamState:
    return StreamState(
        path=str(raw["path"]),
        next_seq=int(raw["next_seq"]),
        segments=[Segment(**seg) for seg in raw.get("segments", [])],
    )


class CheckpointFile:
    """Loads and atomically replaces the checkpoint at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")

    def load(self) -> Checkpoint:
        """Return the saved checkpoint (a complete left-over tmp file wins), or an empty one."""
        if self.tmp.exists():
            try:
                cp = Checkpoint.from_json(self.tmp.read_text(), str(self.tmp))
            except (CheckpointError, OSError):
                pass  # interrupted before it was complete: the main file is current
            else:
                self.save(cp)
                return cp
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return Checkpoint()
        except OSError as exc:
            raise CheckpointError(f"{self.path}: cannot read checkpoint: {exc.strerror}") from exc
        return Checkpoint.from_json(text, str(self.path))

    def save(self, cp: Checkpoint) -> None:
        """Replace the checkpoint atomically and durably."""
        data = cp.to_json().encode()
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self.tmp, self.path)
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            raise CheckpointError(
                f"{self.path}: cannot write checkpoint: {exc.strerror}; "
                "check that the state directory exists and is writable by the shipper"
            ) from exc


def lock_state_dir(state_dir: Path) -> int:
    """Create ``state_dir`` and hold its ``lock`` file for the life of the process.

    Returns the descriptor (closing it, or the process ending even by
    ``kill -9``, releases the lock). Raises ``CheckpointError`` when another
    shipper holds it: two shippers on one checkpoint would undo each other's
    progress.
    """
    path = state_dir / "lock"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise CheckpointError(
            f"{state_dir}: cannot use the state directory: {exc.strerror}; create it and "
            "make it writable by the shipper's user (or set state_dir)"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise CheckpointError(
            f"{state_dir} is in use by another squidguard-bloom-ship (pid {other}); stop it "
            "first (e.g. systemctl stop squidguard-bloom-ship), or give this one its own "
            "--state-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
