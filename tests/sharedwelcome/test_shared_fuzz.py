"""Hostile request lines through a helper whose welcome state is on Redis: the same
replies and logs, byte for byte, as the local filter gives (one proxy, fresh state)."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

from squidguard_bloom.bench import fuzz
from squidguard_bloom.helper import runtime
from squidguard_bloom.helper.loop import ErrorReport, Loop, serve

from .servers import RedisServer

SEED = 20261204
LINES = 20_000
_STAMP = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[\d+\] ", re.M)


def run(root: Path, corpus: list[bytes], key: str, fast: bool, shared: str | None) \
        -> tuple[bytes, dict[str, bytes], Loop]:
    conf = fuzz.write_setup(root, key=key)
    if shared is not None:
        text = conf.read_text()
        assert text.count("    log welcome.log\n") == 1
        # 5 s: a batch that missed a shorter deadline on a loaded machine would be answered
        # without its welcome and differ from the local run for a reason this test is not about.
        conf.write_text(text.replace("    log welcome.log\n", f"    log welcome.log\n    shared "
                                     f"{shared}\n    shared-deadline 5s\n"))
    told = io.StringIO()
    helper = Loop(runtime.build(runtime.Options(config=str(conf), fast_path=fast)),
                    errors=ErrorReport(told))
    if shared is not None:
        helper.rt.welcome.settle(10)  # connected before the first line
    out = io.BytesIO()
    try:
        serve(helper, fuzz.Pipe(b"\n".join(corpus) + b"\n", random.Random(SEED)), out)
    finally:
        helper.rt.close()
    assert (helper.errors.count, told.getvalue()) == (0, "")
    logs = {p.name: _STAMP.sub(b"", p.read_bytes()) for p in sorted((root / "logs").iterdir())}
    return out.getvalue(), logs, helper


def test_fuzzed_lines_shared_answers_as_local(tmp_path: Path, redis_server: RedisServer) -> None:
    corpus = list(fuzz.request_lines(SEED, LINES))
    for key in ("ip", "user"):
        local_out, local_logs, _ = run(tmp_path / f"local-{key}", corpus, key, True, None)
        url = f"{redis_server.url.rsplit('/', 1)[0]}/{'1' if key == 'ip' else '2'}"
        fast_out, fast_logs, fast = run(tmp_path / f"shared-{key}", corpus, key, True, url)
        redis_server.cli("-n", "1" if key == "ip" else "2", "FLUSHDB")
        slow_out, slow_logs, _ = run(tmp_path / f"python-{key}", corpus, key, False, url)
        kinds = fuzz.check_replies(corpus, local_out)
        assert "BH" not in kinds
        assert fast_out == local_out
        assert slow_out == local_out
        assert fast_logs == local_logs == slow_logs
        welcomed = local_logs["welcome.log"].count(b"\n")
        assert welcomed > 100
        shared = fast.rt.welcome
        assert shared is not None and not shared.decides
        assert 0 < shared.asked < LINES // 2  # asked about possible first visits only
