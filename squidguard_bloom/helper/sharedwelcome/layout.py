"""Where the shared welcome bits live on Redis, and the commands that touch them, as bytes.

Key names: ``PREFIX:{TAG}:GEN`` for the bits of shard TAG in generation GEN
("all" without a window) and ``PREFIX:{TAG}:marker`` for the shard's marker,
a string naming the filter's parameters.  The part in braces is the
Redis Cluster hash tag: a shard's bits, its other generations and its marker
share one slot, so one command sees all of a client's bits, and the tags are
picked so that shard s falls in the s-th N-th of the 16384 slots (masters
usually own contiguous ranges, so the shards spread over them).

Bit x of the local filter (byte x // 8, least significant bit first) is
Redis bit offset x ^ 7 (BITFIELD counts from the most significant bit):
with one shard the Redis string holds exactly the local filter's bytes.

Commands are written straight as RESP bytes: the hot path builds one
pipeline per batch without a client library's per-command overhead.
"""

from __future__ import annotations

SLOTS = 16384

#: Atomic "seen in the previous generation, else add to the current one":
#: -1 known from the previous generation (nothing written), 0 known now, 1 new.
WINDOW_SCRIPT = """\
local ro = {}
for i = 1, #ARGV do ro[#ro + 1] = 'GET'; ro[#ro + 1] = 'u1'; ro[#ro + 1] = ARGV[i] end
local before = redis.call('BITFIELD_RO', KEYS[2], unpack(ro))
local all = true
for i = 1, #before do if before[i] == 0 then all = false; break end end
if all then return -1 end
local set = {}
for i = 1, #ARGV do
  set[#set + 1] = 'SET'; set[#set + 1] = 'u1'; set[#set + 1] = ARGV[i]; set[#set + 1] = 1
end
local old = redis.call('BITFIELD', KEYS[1], unpack(set))
for i = 1, #old do if old[i] == 0 then return 1 end end
return 0
"""


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM, the checksum Redis Cluster maps keys to slots with."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: bytes) -> int:
    """The cluster slot of key (its {hash tag} if it has a non-empty one)."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc16(key) % SLOTS


def shard_tags(prefix: str, shards: int) -> list[str]:
    """A hash tag per shard, shard s's slot in [s * 16384 / N, (s + 1) * 16384 / N)."""
    tags = []
    for s in range(shards):
        lo, hi = s * SLOTS // shards, (s + 1) * SLOTS // shards
        n = 0
        while not lo <= key_slot(f"{{{prefix}.{s}.{n}}}".encode()) < hi:
            n += 1
        tags.append(f"{prefix}.{s}.{n}")
    return tags


def command(*args: bytes | str | int) -> bytes:
    """One command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        raw = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class Layout:
    """Key names and commands of one filter (bits per shard, k, seed, window)."""

    def __init__(self, prefix: str, shards: int, shard_bits: int, hashes: int, seed: int,
                 window: float | None) -> None:
        self.prefix = prefix
        self.shards = shards
        self.shard_bits = shard_bits
        self.hashes = hashes
        self.window = window
        self.tags = shard_tags(prefix, shards)
        self.marker_value = (f"squidguard-bloom welcome filter v1 bits={shard_bits} "
                             f"shards={shards} k={hashes} seed={seed} "
                             f"window={'none' if window is None else f'{window:g}'}").encode()

    def generation(self, now: float) -> int:
        """The generation of now (0 without a window)."""
        return 0 if self.window is None else int(now // self.window)

    def bits_key(self, shard: int, gen: int) -> bytes:
        """The key holding shard's bits in generation gen."""
        name = "all" if self.window is None else str(gen)
        return f"{self.prefix}:{{{self.tags[shard]}}}:{name}".encode()

    def marker_key(self, shard: int) -> bytes:
        """The key that says shard's data was written by this layout."""
        return f"{self.prefix}:{{{self.tags[shard]}}}:marker".encode()

    def ttl(self) -> int:
        """Seconds a generation key lives: two windows and a margin for skewed clocks."""
        assert self.window is not None
        return int(2 * self.window + max(60.0, self.window / 10)) + 1

    def prepare(self, shard: int, gen: int) -> list[bytes]:
        """Commands that size a generation's key at once (one allocation) and
        give it its expiry on the first write; harmless when repeated."""
        key = self.bits_key(shard, gen)
        last = (self.shard_bits - 1) | 7  # the last Redis offset of the last byte
        cmds = [command("BITFIELD", key, "OVERFLOW", "WRAP", "INCRBY", "u1", last, 0)]
        if self.window is not None:
            cmds.append(command("EXPIRE", key, self.ttl(), "NX"))
        return cmds

    def ask_many(self, flat: list[int], gen: int, sha: bytes) \
            -> tuple[dict[int, list[bytes]], list[tuple[int, int]]]:
        """The commands adding each key's bits, per shard, and where each key's is.

        flat: BloomFilter.positions_many's output (shard, then k indexes, per key).
        A key's command is a BITFIELD SET of its k bits (the reply: their old
        values), or with a window the script (the reply: -1, 0 or 1), and its
        place is (shard, index among that shard's commands).
        """
        k = self.hashes
        step = k + 1
        # One formatting pass over every offset of the batch, then cut per key.
        if self.window is None:
            fields = [f"$3\r\nSET\r\n$2\r\nu1\r\n${len(o)}\r\n{o}\r\n$1\r\n1\r\n"
                      for o in [str(x ^ 7) for j, x in enumerate(flat) if j % step]]
        else:
            fields = [f"${len(o)}\r\n{o}\r\n"
                      for o in [str(x ^ 7) for j, x in enumerate(flat) if j % step]]
        per_shard: dict[int, list[bytes]] = {}
        where: list[tuple[int, int]] = []
        heads: dict[int, bytes] = {}
        for i, shard in enumerate(flat[::step]):
            head = heads.get(shard)
            if head is None:
                head = heads[shard] = self._head(shard, gen, sha)
            cmds = per_shard.setdefault(shard, [])
            where.append((shard, len(cmds)))
            cmds.append(head + "".join(fields[i * k : (i + 1) * k]).encode())
        return per_shard, where

    def _head(self, shard: int, gen: int, sha: bytes) -> bytes:
        k = self.hashes
        if self.window is None:
            key = self.bits_key(shard, gen)
            return b"*%d\r\n$8\r\nBITFIELD\r\n$%d\r\n%s\r\n" % (2 + 4 * k, len(key), key)
        cur, prev = self.bits_key(shard, gen), self.bits_key(shard, gen - 1)
        return b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$1\r\n2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            5 + k, sha, len(cur), cur, len(prev), prev)
