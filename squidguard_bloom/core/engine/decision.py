"""What a policy answers for one request (:class:`Decision`), and what a policy is."""

from __future__ import annotations

from squidguard_bloom.records import FrozenRecord

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from squidguard_bloom.core.engine.request import Request

PASS = "pass"
REDIRECT = "redirect"  # answered OK status=NNN url="…"
REWRITE = "rewrite"  # answered OK rewrite-url="…" (a 302 for CONNECT)
UNPARSABLE = "unparsable"  # no host in the URL: answered ERR message="…" (url holds the text)


class Decision(FrozenRecord):
    """The verdict on a request, with everything the helper must write about it.

    ``status`` is the redirect status for REDIRECT.  ``host`` is the
    normalised host the policy looked up.  ``explanation`` says which source,
    acl branch, dest and list entry decided (for ``--explain``).  ``log``
    holds (log file path, squidGuard request line) pairs to append.
    """

    action: str
    url: str = ""
    status: int = 302
    host: str = ""
    explanation: str = ""
    log: tuple[tuple[str, str], ...] = ()
    source: str = "default"
    target: str = "unknown"


PASS_ALL = Decision(PASS, explanation="emergency mode: passing everything")


class Policy:
    """What decides requests: the engine, or an emergency mode (see helper/runtime.py)."""

    def decide(self, req: Request, now: float) -> Decision:  # pragma: no cover - interface
        """The verdict for req at time now."""
        raise NotImplementedError
