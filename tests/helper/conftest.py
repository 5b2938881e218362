"""A toy policy so the helper loop can be tested apart from the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from squidguard_bloom.core.engine.decision import PASS, REDIRECT, REWRITE, Decision, Policy
from squidguard_bloom.core.engine.request import Request
from squidguard_bloom.helper.loop import Loop
from squidguard_bloom.helper.reqlog import LogSink
from squidguard_bloom.helper.runtime import Runtime
from squidguard_bloom.helper.welcome import Welcome, WelcomeSettings


class ToyPolicy(Policy):
    """Blocks hosts containing 'bad' (redirect), rewrites 'old', passes the rest."""

    def decide(self, req: Request, now: float) -> Decision:
        host = req.url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
        if "boom" in host:
            raise RuntimeError("engine failure")
        if "bad" in host:
            return Decision(REDIRECT, "http://block.example/?u=" + req.url, 302, host)
        if "old" in host:
            return Decision(REWRITE, "http://new.example/", host=host)
        return Decision(PASS, host=host)


@pytest.fixture
def make_helper(tmp_path: Path):
    """Build a Loop with the toy policy and, optionally, a welcome filter."""
    made: list[Runtime] = []

    def make(welcome: bool = True, style: str = "squid34", **kw: object) -> Loop:
        settings = WelcomeSettings(
            redirect="http://welcome.example/?next=%u&c=%a",
            state=str(tmp_path / "state" / "welcome.bloom"),
            capacity=1000,
            error=0.001,
            exempt_hosts=frozenset({"welcome.example", "block.example"}),
            **kw,  # type: ignore[arg-type]
        )
        rt = Runtime(
            policy=ToyPolicy(),
            sink=LogSink(),
            welcome=Welcome(settings) if welcome else None,
            welcome_log=str(tmp_path / "welcome.log"),
            style=style,
        )
        made.append(rt)
        return Loop(rt)

    yield make
    for rt in made:
        rt.close()
