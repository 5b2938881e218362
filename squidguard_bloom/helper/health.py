"""The helper's health: counters and the status line it writes to squidGuard.log.

One line, at start, every :data:`STATUS_INTERVAL` seconds while serving and on
SIGUSR1, in squidGuard's log style (``YYYY-MM-DD HH:MM:SS [PID] INFO: status: …``).
The message is a fixed list of ``key=value`` words; this is the contract with
the monitor (``squidguard_bloom.monitor.parse.parse_helper_status``), so keys are
only ever added at the end, never renamed or reordered::

    status: answered=1200 blocks=31 welcomes=4 filter=2210/1000000 fpr=2.1e-09
    target=0.001 over_capacity=no emergency=no uptime=3600 interval=60

(one line). ``filter`` is ``ENTRIES/CAPACITY`` of the welcome filter in use, or
``-`` (and ``fpr``/``target`` ``-``, ``over_capacity=no``) without a welcome
block or in emergency mode. ``fpr`` is the false-positive rate implied by the
filter's fill now. ``blocks`` counts every reply that redirects or rewrites a
request except welcomes (so rewrites by ``rewrite`` rules count too).
``emergency`` is ``no``, ``pass`` or ``block``. Counters
are this process's since it started (each Squid child writes its own line,
under its own PID).

Emergency mode is announced once, right after start, as::

    ERROR: emergency mode: pass: <why>          (or  emergency mode: block URL: <why>)

and reloads as ``WARN: Received sigHUP, reloaded configuration`` or
``ERROR: reload failed, configuration unchanged (see stderr)``.
Nothing here runs per request: the loop adds to three integers per batch.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from squidguard_bloom.helper.welcome import Welcome

#: Seconds between status lines while serving (also written at start and on SIGUSR1).
STATUS_INTERVAL = 60.0
#: The first words of every status message: the monitor matches this exactly.
STATUS_PREFIX = "status: "
EMERGENCY_PREFIX = "emergency mode: "


class Health:
    """Counters of one helper process and when its next status line is due."""

    __slots__ = ("answered", "blocks", "due", "interval", "started", "welcomes")

    def __init__(self, interval: float = STATUS_INTERVAL, now: float | None = None) -> None:
        self.started = time.monotonic() if now is None else now
        self.interval = interval
        self.due = self.started + interval
        self.answered = 0
        self.blocks = 0
        self.welcomes = 0

    def status_line(self, welcome: Welcome | None, emergency: str, now: float,
                    wall: float) -> str:
        """The status message (without the log prefix) for this moment.

        emergency: ``no``, ``pass`` or ``block``; now: the monotonic clock (uptime);
        wall: the helper's clock (welcome window generations).
        """
        filt, fpr, target, over = "-", "-", "-", "no"
        if welcome is not None and emergency == "no":
            info = welcome.filters(wall)[0].info()
            filt = f"{info.entries}/{info.capacity}"
            fpr = f"{info.current_error_rate:.3g}"
            target = f"{info.error_rate:g}"
            over = "yes" if info.over_capacity else "no"
        return (f"{STATUS_PREFIX}answered={self.answered} blocks={self.blocks} "
                f"welcomes={self.welcomes} filter={filt} fpr={fpr} target={target} "
                f"over_capacity={over} emergency={emergency} "
                f"uptime={int(now - self.started)} interval={int(self.interval)}")


def emergency_line(mode: str, url: str | None, why: str) -> str:
    """The one squidGuard.log message that announces emergency mode."""
    what = "pass" if mode == "pass" else f"block {url}"
    return f"{EMERGENCY_PREFIX}{what}: {why}"
