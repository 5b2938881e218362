"""Which Squid result codes count as served from the cache.

A hit is any code with ``HIT`` in it (``TCP_HIT``, ``TCP_MEM_HIT``,
``TCP_IMS_HIT``, ``TCP_INM_HIT``, ``TCP_NEGATIVE_HIT``, ``TCP_OFFLINE_HIT``,
``TCP_STALE_HIT``, ``TCP_CF_HIT``, their ``_ABORTED``/``_TIMEDOUT`` forms ...),
plus ``TCP_REFRESH_UNMODIFIED`` (the cached copy was revalidated and sent) and
``TCP_REFRESH_FAIL_OLD`` (the origin failed, the cached copy was sent). Every
other code (``TCP_MISS``, ``TCP_REFRESH_MODIFIED``, ``TCP_TUNNEL``,
``TCP_DENIED``, ``NONE`` ...) is a miss. Ingest stores the answer in
``rollup_cache.hit``, so queries need not repeat the rule.
"""

from __future__ import annotations

_REVALIDATED = ("TCP_REFRESH_UNMODIFIED", "TCP_REFRESH_FAIL_OLD")


def is_hit(result: str) -> bool:
    """Whether a Squid result code (``TCP_MEM_HIT``) means the cache served the reply."""
    return "HIT" in result or result.startswith(_REVALIDATED)
