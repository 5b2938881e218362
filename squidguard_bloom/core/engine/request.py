"""One request as Squid describes it: what the engine decides on.

:mod:`squidguard_bloom.helper.protocol` reads it from a request line; the
engine (:meth:`squidguard_bloom.core.engine.decision.Policy.decide`) reads
its fields.  Text fields are decoded with ``surrogateescape``.
"""

from __future__ import annotations

from squidguard_bloom.core.rawtext import text
from squidguard_bloom.records import Record


class Request(Record):
    """One parsed request line.  Missing fields are empty strings."""

    channel: bytes | None  # the channel-ID exactly as received, or None (serial mode)
    url: str
    client: str = ""  # client address as sent ("-" too; "" when absent)
    fqdn: str = ""  # client name ("" when absent or "-")
    user: str = ""  # ident / login as sent, spaces and all ("" when "-")
    method: str = ""
    problem: str = ""  # why the line could not be fully parsed, or ""
    extras_raw: tuple[bytes, ...] = ()  # the trailing key=value tokens, as received

    @property
    def extras(self) -> dict[str, str]:
        """The trailing ``key=value`` extras (decoded on demand: the engine never needs them)."""
        pairs = (t.partition(b"=") for t in self.extras_raw)
        return {text(k): text(v) for k, _, v in pairs}
