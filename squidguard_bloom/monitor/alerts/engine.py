"""The alert state machine: pending -> firing -> resolved, per rule and proxy; grouping,
inhibition, silences and the repeat interval decide which messages go out.

Pure logic on an injected clock (``step(now, ...)``): no database, no network,
so a scripted timeline can drive it. :mod:`.store` saves and loads its state.

* An alert starts **pending** the first evaluation that finds its condition
  (from the moment it was observed, when a rule knows it: the probe round),
  and turns **firing** once the condition held for the rule's ``for`` (at once
  when ``for`` is 0). When the condition no longer holds (for
  ``keep_firing_for``, default 0) it is **resolved** and removed.
* Alerts are **grouped** by ``group_by`` (default: the rule). A group's first
  message waits ``group_wait`` from the moment its first alert appeared
  (pending or firing) *and* until every alert that appeared within that wait
  is firing: ten proxies going down within ``group_wait`` make one message,
  and when ``for`` is at least ``group_wait`` a lone fault is reported right
  when it fires. (Alertmanager starts group_wait only at firing; counting it
  from pending keeps the time from fault to message at ``for`` + one
  evaluation.)
* After that a group sends at most one message per ``group_interval`` (also
  across a moment with no alert at all: an empty group is kept that long): when
  its set of firing alerts changed (new ones, recoveries), or, unchanged and
  still firing, every ``repeat_interval``. When all its alerts resolved, one
  recovery message.
* **Muted** alerts notify nobody: silenced (a matching silence is active) or
  inhibited (a firing alert of an inhibiting rule on the same proxy). An
  alert muted after it was notified stays counted as notified, so muting does
  not produce a false recovery message; its real recovery is reported.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from squidguard_bloom.monitor.alerts.rules import Finding
from squidguard_bloom.monitor.alerts.settings import AlertSettings

PENDING = "pending"
FIRING = "firing"


@dataclass
class Alert:
    """One (rule, proxy) whose condition holds, or held until lately."""

    rule: str
    proxy: str
    state: str
    active_since: float
    since: float
    firing_since: float | None
    last_true: float
    summary: str

    @property
    def key(self) -> str:
        return f"{self.rule}/{self.proxy}"


@dataclass
class Resolved:
    """A notified alert that resolved since its group's last message."""

    rule: str
    proxy: str
    since: float
    ended: float
    summary: str

    @property
    def key(self) -> str:
        return f"{self.rule}/{self.proxy}"


@dataclass
class Group:
    """Alerts that share a message (Alertmanager's aggregation group)."""

    key: str
    first_seen: float
    last_sent: float | None = None
    notified: list[str] = field(default_factory=list)  # alert keys firing at the last message
    resolved: list[Resolved] = field(default_factory=list)


@dataclass
class Silence:
    """No message for alerts of rule (or ``*``) on proxies matching a glob, until ends."""

    id: int
    rule: str
    proxy: str
    starts: float
    ends: float
    author: str = ""
    comment: str = ""

    def matches(self, alert: Alert, now: float) -> bool:
        return (self.starts <= now < self.ends and self.rule in ("*", alert.rule)
                and fnmatch.fnmatchcase(alert.proxy, self.proxy))


@dataclass
class Outgoing:
    """A message the engine decided to send for a group."""

    group: str
    kind: str  # firing | update | resolved | repeat
    at: float
    firing: list[Alert]
    new: list[str]  # keys of firing alerts not in the previous message
    resolved: list[Resolved]


@dataclass
class Transition:
    """A state change, for the history."""

    at: float
    rule: str
    proxy: str
    from_state: str
    to_state: str
    summary: str


class Engine:
    """All alerts and groups of one monitor; see the module docstring."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self.alerts: dict[str, Alert] = {}
        self.groups: dict[str, Group] = {}
        self.silences: list[Silence] = []

    def group_key(self, alert: Alert | Resolved) -> str:
        labels = {"rule": alert.rule, "proxy": alert.proxy}
        return ",".join(f"{k}={labels[k]}" for k in self.settings.group_by)

    # -- muting ----------------------------------------------------------------------

    def silenced(self, alert: Alert, now: float) -> Silence | None:
        for s in self.silences:
            if s.matches(alert, now):
                return s
        return None

    def inhibited_by(self, alert: Alert) -> Alert | None:
        for rule in self.settings.inhibit:
            if alert.rule not in rule.targets:
                continue
            source = self.alerts.get(f"{rule.source}/{alert.proxy}")
            if source is not None and source.state == FIRING:
                return source
        return None

    def muted(self, alert: Alert, now: float) -> bool:
        return self.silenced(alert, now) is not None or self.inhibited_by(alert) is not None

    # -- one evaluation ---------------------------------------------------------------

    def step(self, now: float, findings: dict[str, dict[str, Finding]]
             ) -> tuple[list[Transition], list[Outgoing]]:
        """Apply one evaluation's findings (rule -> proxy -> Finding, for the rules evaluated
        now: a rule missing from findings keeps its alerts as they are); the state changes
        and the messages to send."""
        changes = self._update(now, findings)
        return changes, self._flush(now)

    def _update(self, now: float, findings: dict[str, dict[str, Finding]]) -> list[Transition]:
        changes: list[Transition] = []
        for rule_name, found in findings.items():
            rule = self.settings.rules[rule_name]
            for proxy, finding in found.items():
                key = f"{rule_name}/{proxy}"
                alert = self.alerts.get(key)
                if alert is None:
                    state = FIRING if rule.for_ <= 0 else PENDING
                    start = now if finding.observed is None else min(now, finding.observed)
                    alert = Alert(rule_name, proxy, state, start, finding.since or now,
                                  now if state == FIRING else None, now, finding.summary)
                    self.alerts[key] = alert
                    changes.append(Transition(now, rule_name, proxy, "none", state,
                                              finding.summary))
                else:
                    alert.last_true = now
                    alert.summary = finding.summary
                if alert.state == PENDING and now - alert.active_since >= rule.for_:
                    alert.state = FIRING
                    alert.firing_since = now
                    changes.append(Transition(now, rule_name, proxy, PENDING, FIRING,
                                              finding.summary))
            for key in [k for k, a in self.alerts.items()
                        if a.rule == rule_name and a.proxy not in found]:
                alert = self.alerts[key]
                if alert.state == FIRING and now - alert.last_true < rule.keep_firing_for:
                    continue
                del self.alerts[key]
                to = "resolved" if alert.state == FIRING else "dropped"
                changes.append(Transition(now, alert.rule, alert.proxy, alert.state, to,
                                          alert.summary))
                group = self.groups.get(self.group_key(alert))
                if group is not None and key in group.notified:
                    group.resolved.append(Resolved(alert.rule, alert.proxy, alert.since, now,
                                                   alert.summary))
        return changes

    def _flush(self, now: float) -> list[Outgoing]:
        s = self.settings
        members: dict[str, list[Alert]] = {}
        for alert in self.alerts.values():
            gkey = self.group_key(alert)
            group = self.groups.get(gkey)
            notified = group is not None and alert.key in group.notified
            if self.muted(alert, now) and not notified:
                continue
            members.setdefault(gkey, []).append(alert)
            if group is None:
                self.groups[gkey] = Group(gkey, now)
        out: list[Outgoing] = []
        for gkey in sorted(self.groups):
            group = self.groups[gkey]
            alerts = sorted(members.get(gkey, []), key=lambda a: (a.rule, a.proxy))
            firing = [a for a in alerts if a.state == FIRING]
            if group.last_sent is None:
                if not alerts:
                    del self.groups[gkey]
                    continue
                window_end = group.first_seen + s.group_wait
                first_fired = min((a.firing_since or now for a in firing), default=now)
                settled = all(a.state == FIRING for a in alerts if a.active_since <= window_end)
                if firing and now >= window_end and (settled or
                                                      now >= first_fired + s.group_wait):
                    out.append(self._send(group, "firing", now, firing))
                continue
            if now < group.last_sent + s.group_interval:
                continue
            current = {a.key for a in firing}
            if current != set(group.notified):
                kind = "resolved" if not current else "firing" if not group.notified \
                    else "update"
                out.append(self._send(group, kind, now, firing))
            elif current and now >= group.last_sent + s.repeat_interval:
                out.append(self._send(group, "repeat", now, firing))
            # An empty group is forgotten only a group_interval after its last message, so
            # a fault that comes back at once still waits its turn (flapping).
            if not alerts and not group.notified and now >= group.last_sent + s.group_interval:
                del self.groups[gkey]
        return out

    def next_due(self) -> float:
        """The earliest time a pending alert turns firing or a group may send; the service
        evaluates then, so a message is not held back until the next regular evaluation."""
        s = self.settings
        times = [a.active_since + s.rules[a.rule].for_ for a in self.alerts.values()
                 if a.state == PENDING]
        for g in self.groups.values():
            times.append(g.first_seen + s.group_wait if g.last_sent is None
                         else g.last_sent + s.group_interval)
        return min(times, default=float("inf"))

    def _send(self, group: Group, kind: str, now: float, firing: list[Alert]) -> Outgoing:
        new = [a.key for a in firing if a.key not in group.notified]
        msg = Outgoing(group.key, kind, now, list(firing), new, list(group.resolved))
        group.notified = [a.key for a in firing]
        group.resolved = []
        group.last_sent = now
        return msg
