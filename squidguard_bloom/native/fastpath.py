"""The C fast path (csrc/fastpath.h) behind one Python class: a batch per C call.

:class:`FastPath` turns a :class:`FastPlan` (the engine's procedure reduced
to what C can run, made by :mod:`squidguard_bloom.helper.fastplan`) into the
C program, again whenever the plan changes, and hands it each batch.  C
answers the lines it can decide with certainty; the others come back as
(reply offset, line, welcomed) for the Python engine, whose replies the
helper splices in at those offsets, and the log lines C wrote come back as
(path, text) in line order.

The plan is plain data (strings, ints, tuples, :class:`~squidguard_bloom.
native.listindex.ListIndex` objects); no cffi object leaves this module.
"""

from __future__ import annotations

from squidguard_bloom.native import _bloom
from squidguard_bloom.native.bloom import BloomFilter, handle
from squidguard_bloom.native.listindex import ListIndex, table
from squidguard_bloom.records import FrozenRecord

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    #: (path, anonymous, verbose) of a log file, as the configuration's ``log`` line says
    Log = tuple[str, bool, bool]
    #: (status, or 0 for a rewrite-url, and the rest) of a redirect template
    Template = tuple[int, str]
    #: (line offset in the replies, the line or None, welcomed, (path, text) or None)
    Rest = tuple[int, bytes | None, bool, tuple[str, str] | None]

_ffi: Any = _bloom.ffi
_lib: Any = _bloom.lib

#: More address rules than this and C's linear scan would cost more than it saves.
MAX_RULES = 1024
_RULE_KINDS = {"mask": _lib.SGB_FP_MASK, "range": _lib.SGB_FP_RANGE}
_LIMIT = 1 << 31  # sgb_fp_batch refuses batches this long
_WELCOME = _lib.SGB_FP_WELCOME
_LOG = _lib.SGB_FP_LOG

# struct sgb_fp_fallback is all uint32_t: its fields by name, as positions in a uint32 view.
_FALLBACK = "struct sgb_fp_fallback"
_F_STRIDE = _ffi.sizeof(_FALLBACK) // 4
_F_KIND, _F_AT, _F_START, _F_END, _F_PATH = (
    _ffi.offsetof(_FALLBACK, name) // 4 for name in ("kind", "at", "start", "end", "path"))
if (_F_AT, _F_START, _F_END) != (_F_KIND + 1, _F_KIND + 2, _F_KIND + 3):  # read as one slice
    raise ImportError(f"{_FALLBACK}: kind, at, start and end are no longer consecutive")


class PlanSource(FrozenRecord):
    """An active source as the fast path sees it."""

    ips: tuple[tuple[str, int, int], ...] | None  # IPv4 (kind, a, b); None: no address test
    fqdn: bool  # also tests the client's domain
    user: bool  # also tests the user
    empty_user: bool  # ... and the empty user is one of its users
    log: Log | None
    branch: int  # index into FastPlan.branches; -1: Python decides (``continue``)
    acl_name: str  # %s of its blocks: its acl's name, "default" when it has none


class PlanBranch(FrozenRecord):
    """An acl branch: its pass list as (word, negate, dest index), None: Python decides."""

    passes: tuple[tuple[str, bool, int], ...] | None  # word "dest", "all", "none", "in-addr"
    rewrite: bool  # allowed requests may be rewritten
    redirect: Template | None  # blocks no dest redirects: its own template, else default's


class PlanDest(FrozenRecord):
    """A dest a branch checks: its compiled lists and what C writes for it."""

    name: str
    domains: ListIndex | None  # the compiled domain list
    urls: ListIndex | None  # the compiled url list
    python: bool  # a list C cannot read (text, or an expression without literals)
    literals: tuple[str, ...]  # the expressions' prefilter: no hit without one of these
    rewrite: bool  # the dest has a rewrite (Python applies it)
    redirect: Template | None
    log: Log | None


class FastPlan(FrozenRecord):
    """The decision procedure for the current time, reduced to what C can run.

    Sources in file order (inactive ones left out), the branches they lead
    to, and the dests those branches check (inactive dests and unknown words
    left out of pass lists); and the welcome rule's settings.
    """

    sources: tuple[PlanSource, ...]
    branches: tuple[PlanBranch, ...]
    dests: tuple[PlanDest, ...]
    default_branch: int
    default_log: Log | None
    welcome_by_user: bool = False  # the welcome key is the user when the request has one
    exempt_hosts: tuple[str, ...] = ()  # never welcomed
    welcome_cache: bool = False  # the filter caches a shared state: C checks, Python asks


class _Text:
    """The program's byte strings and redirect templates, by index."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.spans: list[int] = []  # (offset, length) pairs into data
        self.templates: list[tuple[int, int]] = []  # (status or 0, span of the rest)
        self.logs: list[tuple[int, int]] = []  # (flags, index in paths)
        self.paths: list[str] = []
        self._log_index: dict[Log, int] = {}

    def __len__(self) -> int:
        return len(self.spans) // 2

    def add(self, text: str) -> int:
        raw = text.encode("utf-8", "surrogateescape")
        self.spans.extend((len(self.data), len(raw)))
        self.data.extend(raw)
        return len(self) - 1

    def log(self, spec: Log | None) -> int:
        if spec is None:
            return -1
        if spec not in self._log_index:
            path, anonymous, verbose = spec
            if path not in self.paths:
                self.paths.append(path)
            flags = ((_lib.SGB_FP_LOG_VERBOSE if verbose else 0)
                     | (_lib.SGB_FP_LOG_ANONYMOUS if anonymous else 0))
            self._log_index[spec] = len(self.logs)
            self.logs.append((flags, self.paths.index(path)))
        return self._log_index[spec]

    def template(self, template: Template | None) -> int:
        if template is None:
            return -1
        status, rest = template
        self.templates.append((status, self.add(rest)))
        return len(self.templates) - 1


def _rules(plan: FastPlan, text: _Text) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """(rules, sources): each source's address tests in file order, and its flags."""
    rules: list[tuple[int, ...]] = []
    sources: list[tuple[int, ...]] = []
    for i, s in enumerate(plan.sources):
        flags = ((_lib.SGB_FP_SRC_FQDN if s.fqdn else 0)
                 | (_lib.SGB_FP_SRC_USER if s.user else 0)
                 | (_lib.SGB_FP_SRC_EMPTY_USER if s.empty_user else 0))
        sources.append((flags, s.branch, text.add(s.acl_name), text.log(s.log)))
        if s.ips is None:
            rules.append((_lib.SGB_FP_ANY, 0, 0, i))
        else:
            rules.extend((_RULE_KINDS[kind], a, b, i) for kind, a, b in s.ips)
    if len(rules) > MAX_RULES:
        raise ValueError(f"{len(rules)} address rules: more than the fast path scans")
    return rules, sources


def _branches(plan: FastPlan, text: _Text) -> tuple[list[tuple[int, ...]],
                                                    list[tuple[int, ...]]]:
    """(branches, items): each branch's flags and its slice of the pass-list items."""
    kinds = {"dest": _lib.SGB_FP_DEST, "all": _lib.SGB_FP_ALL, "none": _lib.SGB_FP_NONE,
             "in-addr": _lib.SGB_FP_INADDR}
    branches: list[tuple[int, ...]] = []
    items: list[tuple[int, ...]] = []
    for b in plan.branches:
        flags = _lib.SGB_FP_BR_REWRITE if b.rewrite else 0
        redirect = text.template(b.redirect)
        if b.passes is None:
            branches.append((flags | _lib.SGB_FP_BR_PYTHON, 0, 0, redirect))
            continue
        branches.append((flags, len(items), len(b.passes), redirect))
        items.extend((kinds[word], int(negate), max(dest, 0)) for word, negate, dest in b.passes)
    return branches, items


def _dests(plan: FastPlan, text: _Text) -> list[tuple[Any, ...]]:
    """Each dest's mapped lists, flags, prefilter literals, name and redirect."""
    dests: list[tuple[Any, ...]] = []
    for d in plan.dests:
        flags = ((_lib.SGB_FP_D_REWRITE if d.rewrite else 0)
                 | (_lib.SGB_FP_D_PYTHON if d.python else 0))
        first = len(text)
        for lit in d.literals:
            text.add(lit)
        dom_buf, dom_size = ((table(d.domains), d.domains.size) if d.domains is not None
                             else (_ffi.NULL, 0))
        url_buf, url_size = (table(d.urls), d.urls.size) if d.urls is not None else (_ffi.NULL, 0)
        dests.append((dom_buf, dom_size, url_buf, url_size, flags, first, len(d.literals),
                      text.add(d.name), text.template(d.redirect), text.log(d.log)))
    return dests


class _Program:
    """One struct sgb_fp_program and every C array it points to."""

    __slots__ = ("keep", "paths", "ptr")

    def __init__(self, plan: FastPlan, welcome: bool) -> None:
        self.keep: list[Any] = []
        text = _Text()
        rules, sources = _rules(plan, text)
        branches, items = _branches(plan, text)
        dests = _dests(plan, text)
        flags = 0
        default_name = text.add("default")
        default_log = text.log(plan.default_log)
        first_exempt = len(text)
        if welcome:
            if plan.welcome_by_user:
                flags |= _lib.SGB_FP_WELCOME_BY_USER
            if plan.welcome_cache:
                flags |= _lib.SGB_FP_WELCOME_CACHE
            for host in plan.exempt_hosts:
                text.add(host)
        p = self.ptr = self._new("struct sgb_fp_program *")
        p.rules = self._array("struct sgb_fp_rule", rules, ("kind", "a", "b", "source"))
        p.nrules = len(rules)
        p.sources = self._array("struct sgb_fp_source", sources,
                                ("flags", "branch", "name", "log"))
        p.nsources = len(sources)
        p.branches = self._array("struct sgb_fp_branch", branches,
                                 ("flags", "first", "count", "redirect"))
        p.nbranches = len(branches)
        p.items = self._array("struct sgb_fp_item", items, ("kind", "negate", "dest"))
        p.nitems = len(items)
        p.dests = self._array("struct sgb_fp_dest", dests, (
            "domains", "domains_size", "urls", "urls_size", "flags", "first_literal",
            "nliterals", "name", "redirect", "log"))
        p.ndests = len(dests)
        p.templates = self._array("struct sgb_fp_template", text.templates, ("status", "span"))
        p.ntemplates = len(text.templates)
        p.logs = self._array("struct sgb_fp_log", text.logs, ("flags", "path"))
        p.nlogs = len(text.logs)
        p.default_log = default_log
        self.paths = text.paths
        p.text = self._new("uint8_t[]", bytes(text.data) or b"\0")
        p.text_size = len(text.data)
        p.spans = self._new("uint32_t[]", text.spans or [0])
        p.nspans = len(text)
        p.default_branch = plan.default_branch
        p.default_name = default_name
        p.flags = flags
        p.first_exempt = first_exempt
        p.nexempt = len(text) - first_exempt
        p.welcome = p.welcome_previous = _ffi.NULL

    def _new(self, ctype: str, init: object = None) -> Any:
        obj = _ffi.new(ctype, init)
        self.keep.append(obj)
        return obj

    def _array(self, ctype: str, rows: list[tuple[Any, ...]], fields: tuple[str, ...]) -> Any:
        arr = self._new(f"{ctype}[]", max(len(rows), 1))
        for i, row in enumerate(rows):
            for name, value in zip(fields, row, strict=True):
                setattr(arr[i], name, value)
        return arr


class FastPath:
    """Answers the common lines of a batch in C and names the lines Python must answer."""

    __slots__ = ("_filters", "_logs", "_nrest", "_out", "_plan", "_plans", "_prog", "_rest",
                 "_scratch", "lines", "python_lines")

    def __init__(self, plans: Callable[[float], FastPlan],
                 filters: Callable[[float], tuple[BloomFilter, BloomFilter | None]] | None = None,
                 ) -> None:
        """plans(now): the plan in force at now (the same object while it holds);
        filters(now): the welcome filters to add to and check first (None: no welcome)."""
        self._plans = plans
        self._filters = filters
        self._plan: FastPlan | None = None
        self._prog: _Program | None = None
        self._out: Any = _ffi.new("uint8_t[]", 1 << 16)
        self._logs: Any = _ffi.new("uint8_t[]", 1 << 16)
        self._rest: Any = _ffi.new("struct sgb_fp_fallback[]", 1 << 10)
        self._scratch: Any = _ffi.new("uint64_t[]", 1 << 11) if filters is not None else None
        self._nrest = _ffi.new("uint64_t *")
        self.lines = 0  # lines seen, and of them answered by Python (welcomes included)
        self.python_lines = 0

    def _program(self, now: float) -> _Program | None:
        plan = self._plans(now)
        if plan is not self._plan:
            self._plan = plan
            try:
                self._prog = _Program(plan, self._filters is not None)
            except ValueError:
                self._prog = None
        return self._prog

    def _grow(self, name: str, ctype: str, need: int) -> Any:
        """A new C array of at least need elements (a power of two), kept for later batches."""
        arr = _ffi.new(f"{ctype}[]", 1 << max(need - 1, 1).bit_length())
        setattr(self, name, arr)
        return arr

    def answer(self, data: bytes, count: int, now: float, *, strip_cr: bool = False) \
            -> tuple[bytes, list[Rest]] | None:
        """Answer the count lines of data (joined by newlines; with strip_cr, a CR
        ending a line is not part of it).

        Returns (replies of the lines C answered, rest), rest listing in line
        order (offset in replies, line, welcomed, log): a line Python must
        answer, its reply going at that offset (welcomed: a first visit
        already added to the welcome filter), or None and a (path, text) log
        line to write for a line C answered.  None when C takes no part in
        this batch (every line is Python's).
        """
        prog = self._program(now)
        size = len(data)
        if prog is None or count <= 0 or size >= _LIMIT:
            return None
        # Passes always fit in len + 5 per line; blocks get room to spare, or fall back.
        need = 2 * size + 8 * count + 4096
        out = self._out
        if len(out) < need:
            out = self._grow("_out", "uint8_t", need)
        logs = self._logs
        if len(logs) < need:
            logs = self._grow("_logs", "uint8_t", need)
        rest = self._rest
        if len(rest) < count:
            rest = self._grow("_rest", "struct sgb_fp_fallback", count)
        p = prog.ptr
        if self._filters is None:
            size = _lib.sgb_fp_batch(p, data, size, count, strip_cr, out, len(out), logs,
                                     len(logs), rest, self._nrest, _ffi.NULL, 0)
        else:
            scratch = self._scratch
            if len(scratch) < 2 * count:
                scratch = self._grow("_scratch", "uint64_t", 2 * count)
            current, previous = self._filters(now)
            p.welcome = handle(current)
            p.welcome_previous = handle(previous) if previous is not None else _ffi.NULL
            size = _lib.sgb_fp_batch(p, data, size, count, strip_cr, out, len(out), logs,
                                     len(logs), rest, self._nrest, scratch, len(scratch))
            p.welcome = p.welcome_previous = _ffi.NULL
        if size < 0:
            return None
        n = self._nrest[0]
        self.lines += count
        if not n:
            return _ffi.buffer(out, size)[:], []
        # One copy of the n structs as uint32s, read by field (far cheaper than n cdata reads).
        f = memoryview(_ffi.buffer(rest, 4 * _F_STRIDE * n)).cast("I").tolist()
        found: list[Rest] = []
        for i in range(0, _F_STRIDE * n, _F_STRIDE):
            kind, at, start, end = f[i + _F_KIND : i + _F_KIND + 4]
            if kind == _LOG:
                text = _ffi.buffer(logs + start, end - start)[:].decode("utf-8", "surrogateescape")
                found.append((at, None, False, (prog.paths[f[i + _F_PATH]], text)))
            else:
                self.python_lines += 1
                found.append((at, data[start:end], kind == _WELCOME, None))
        return _ffi.buffer(out, size)[:], found
