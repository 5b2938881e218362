"""The program the C fast path runs, made from the engine for the time blocks active now.

:class:`FastPlanner` reduces the engine's procedure (:mod:`squidguard_bloom.
core.engine.engine`) to a :class:`~squidguard_bloom.native.fastpath.FastPlan`:
the active sources in file order with their address tests, the branches
they lead to, and the dests those branches check, each with its mapped
compiled lists, prefilter literals, redirect and log.  Inactive sources and
dests are left out, and anything C cannot decide with certainty (``continue``
sources, text lists, expressions without literals) is marked for Python.
The plan is remade only when the set of active time blocks changes (checked
once a minute) and by a reload, which builds a new planner.
"""

from __future__ import annotations

from squidguard_bloom.core.engine.template import split_status
from squidguard_bloom.core.lists.compiled import CompiledDomainList, CompiledUrlList
from squidguard_bloom.core.lists.literals import required_literals
from squidguard_bloom.native.fastpath import FastPlan, PlanBranch, PlanDest, PlanSource

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from squidguard_bloom.core.config.model import AclBranch, LogSpec
    from squidguard_bloom.core.engine.engine import Engine, LoadedDest
    from squidguard_bloom.helper.welcome import Welcome


def _log(spec: LogSpec | None) -> tuple[str, bool, bool] | None:
    return None if spec is None else (spec.path, spec.anonymous, spec.verbose)


def _template(text: str | None) -> tuple[int, str] | None:
    """(status or 0, the rest) of a redirect template, split as the engine splits it."""
    if text is None:
        return None
    status, rest = split_status(text)
    return status or 0, rest


def _dest(d: LoadedDest) -> PlanDest:
    """A dest as C reads it: mapped lists, or Python's turn when a list is only text."""
    domains = d.domains.index if isinstance(d.domains, CompiledDomainList) else None
    urls = d.urls.index if isinstance(d.urls, CompiledUrlList) else None
    python = (d.domains is not None and domains is None) or (d.urls is not None and urls is None)
    literals: tuple[str, ...] = ()
    if d.expressions is not None:
        found = [required_literals(p) for p in d.expressions.patterns]
        if any(lits is None for lits in found):  # a pattern that needs no literal: RE2 decides
            python = True
        else:
            literals = tuple(sorted({x for lits in found for x in lits or ()}))
    return PlanDest(d.name, domains, urls, python, literals,
                    d.rewrite is not None, _template(d.redirect or None), _log(d.log))


class FastPlanner:
    """The fast path's plan for the engine's active time blocks (one object while they hold)."""

    __slots__ = ("_engine", "_key", "_minute", "_plan", "_welcome")

    def __init__(self, engine: Engine, welcome: Welcome | None = None) -> None:
        self._engine = engine
        self._welcome = welcome
        self._plan: FastPlan | None = None
        self._key: tuple[bool, ...] = ()
        self._minute = -1.0

    def plan(self, now: float) -> FastPlan:
        """The plan for the time blocks active at now (the same object until they change)."""
        minute = now // 60
        if self._plan is not None and minute == self._minute:
            return self._plan  # the usual call: the minute it was checked for
        key = self._engine.active_times(now)
        if self._plan is None or key != self._key:
            self._plan = self._make()
            self._key = key
        self._minute = minute
        return self._plan

    def _make(self) -> FastPlan:
        engine = self._engine
        branches: list[PlanBranch] = []
        branch_index: dict[int, int] = {}
        dests: list[PlanDest] = []
        dest_index: dict[str, int] = {}

        def add_branch(branch: AclBranch) -> int:
            if id(branch) not in branch_index:
                branch_index[id(branch)] = len(branches)
                branches.append(plan_branch(branch))
            return branch_index[id(branch)]

        def plan_branch(branch: AclBranch) -> PlanBranch:
            passes = engine.passes_of(branch)
            rewrite = engine.rewrite_of(branch) is not None
            redirect = _template(engine.branch_redirect(branch))
            if passes is None:
                return PlanBranch(None, rewrite, redirect)
            items: list[tuple[str, bool, int]] = []
            for item in passes:
                if item.word in ("all", "none"):
                    items.append((item.word, item.negate, -1))
                    break
                if item.word == "in-addr":
                    items.append((item.word, item.negate, -1))
                    continue
                d = engine.usable(item.word)
                if d is None:
                    continue
                if d.name not in dest_index:
                    dest_index[d.name] = len(dests)
                    dests.append(_dest(d))
                items.append(("dest", item.negate, dest_index[d.name]))
            return PlanBranch(tuple(items), rewrite, redirect)

        default_branch = add_branch(engine.default_branch()[0])
        sources: list[PlanSource] = []
        for src in engine.config.sources:
            if not engine.source_active(src):
                continue
            found = engine.acl_for(src)
            branch = add_branch(found[1]) if found is not None else default_branch
            ips = (tuple((e.kind, e.a, e.b) for e in src.ips if e.version == 4)
                   if src.has_ip else None)
            sources.append(PlanSource(ips, bool(src.domains), src.has_user, "" in src.users,
                                      _log(src.log), -1 if src.cont else branch,
                                      found[0].source if found is not None else "default"))
        welcome = self._welcome
        return FastPlan(tuple(sources), tuple(branches), tuple(dests), default_branch,
                        _log(engine.default_log),
                        welcome is not None and welcome.by_user,
                        tuple(sorted(welcome.settings.exempt_hosts)) if welcome else (),
                        welcome is not None and not welcome.decides)
