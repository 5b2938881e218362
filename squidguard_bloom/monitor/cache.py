"""Which Squid result codes count as served from the cache.

A hit is any code with ``HIT`` in it (``TCP_HIT``, ``TCP_MEM_HIT``,
``TCP_IMS_HIT``, ``TCP_INM_HIT``, ``TCP_NEGATIVE_HIT``, ``TCP_OFFLINE_HIT``,
``TCP_STALE_HIT``, ``TCP_CF_HIT``, their ``_ABORTED``/``_TIMEDOUT`` forms ...),
plus ``TCP_REFRESH_UNMODIFIED`` (the cached copy was revalidated and sent) and
``TCP_REFRESH_FAIL_OLD`` (the origin failed, the cached copy was sent). Every
other code (``TCP_MISS``, ``TCP_REFRESH_MODIFIED``, ``TCP_TUNNEL``,
``TCP_DENIED``, ``NONE`` ...) is a miss. ``is_hit`` and ``HIT_SQL`` say the same.
"""

from __future__ import annotations

_REVALIDATED = ("TCP_REFRESH_UNMODIFIED", "TCP_REFRESH_FAIL_OLD")

# SQL of the same rule over a column named "result" (upper case, as Squid writes it)
HIT_SQL = ("(CASE WHEN result LIKE '%HIT%' OR result LIKE 'TCP_REFRESH_UNMODIFIED%' "
           "OR result LIKE 'TCP_REFRESH_FAIL_OLD%' THEN 1 ELSE 0 END)")


def is_hit(result: str) -> bool:
    """Whether a Squid result code (``TCP_MEM_HIT``) means the cache served the reply."""
    return "HIT" in result or result.startswith(_REVALIDATED)
