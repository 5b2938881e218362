"""squidguard-bloom's command line: squidGuard's getopt flags and our long options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from squidguard_bloom.helper.cli import EXIT_USAGE, UsageError, parse_args, read_args


def test_defaults() -> None:
    """No flags: every option off, squid34 replies, the fast path on."""
    a = read_args([])
    assert (a.config, a.compile, a.start_time, a.emergency) == (None, None, None, None)
    assert (a.reply_style, a.fast_path) == ("squid34", True)
    assert not (a.debug or a.update or a.progress or a.passthrough or a.version or a.help
                or a.explain or a.example or a.check)


@pytest.mark.parametrize("argv", [
    ["-c", "/x.conf", "-d", "-P"], ["-c/x.conf", "-dP"], ["-dPc", "/x.conf"], ["-dPc/x.conf"],
])
def test_short_flags_combine_and_take_values_like_getopt(argv: list[str]) -> None:
    """-dP, -cFILE, -c FILE and -dPcFILE all read the same."""
    a = read_args(argv)
    assert (a.config, a.debug, a.passthrough) == ("/x.conf", True, True)


def test_every_short_flag() -> None:
    """squidGuard's letters, each to its field; -? is -h."""
    a = read_args(["-C", "all", "-u", "-b", "-t", "2026-01-01T00:00:00", "-v", "-?"])
    assert (a.compile, a.update, a.progress, a.start_time, a.version, a.help) == (
        "all", True, True, "2026-01-01T00:00:00", True, True)
    assert read_args(["-c", "-d"]).config == "-d"  # the next word is the value, as getopt takes it


def test_long_options_with_values_flags_and_prefixes() -> None:
    """--name=VALUE or --name VALUE; unambiguous prefixes; --no-fast-path clears fast_path."""
    a = read_args(["--reply-style=legacy", "--emergency", "block:http://b/", "--expl",
                   "--check", "--no-fast", "--help"])
    assert (a.reply_style, a.emergency, a.explain, a.check, a.fast_path, a.help) == (
        "legacy", "block:http://b/", True, True, False, True)
    assert read_args(["--example"]).example


@pytest.mark.parametrize(("argv", "message"), [
    (["-x"], "unknown option -x"),
    (["--bogus"], "unknown option --bogus"),
    (["--ex"], "ambiguous option --ex (--explain, --example)"),
    (["-c"], "option -c needs a value"),
    (["--emergency"], "--emergency needs a value"),
    (["--check=yes"], "--check takes no value"),
    (["--reply-style", "squid26"], "--reply-style 'squid26': expected one of squid34, legacy"),
    (["extra"], "unexpected argument 'extra'"),
    (["-d", "--", "x"], "unexpected argument 'x'"),
])
def test_unreadable_command_lines_say_why(argv: list[str], message: str) -> None:
    """Each kind of usage error has its own message."""
    with pytest.raises(UsageError) as err:
        read_args(argv)
    assert str(err.value) == message


def test_usage_error_prints_usage_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """The message, then the usage text, on stderr; exit status 1 as squidGuard's."""
    with pytest.raises(SystemExit) as done:
        parse_args(["-x"])
    assert done.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("squidguard-bloom: unknown option -x\nUsage: squidguard-bloom")


def test_helper_start_imports_no_argparse_and_no_writer() -> None:
    """A start on up-to-date lists needs neither argparse nor the list writer, and never
    loads the monitor or its database drivers (optional parts of the monitoring host)."""
    probe = ("import sys; from squidguard_bloom.helper import cli; cli.parse_args(['-c', 'x']); "
             "import squidguard_bloom.helper.runtime, squidguard_bloom.core.engine.engine; "
             "print(sorted({'argparse', 'squidguard_bloom.core.lists.writer', 'shutil', 'tempfile',"
             " 'squidguard_bloom.monitor', 'sqlite3', 'psycopg', 'mirakuru'}"
             " & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_console_script_exits_after_delivering_every_reply(tmp_path: Path) -> None:
    """command() skips the interpreter's teardown, not the flushing of the replies."""
    script = Path(sys.executable).with_name("squidguard-bloom")
    lines = b"".join(b"http://www.example.com/%d 10.1.2.3/- - GET\n" % i for i in range(500))
    out = tmp_path / "answers"
    with out.open("wb") as fh:
        done = subprocess.run([str(script), "--example"], input=lines, stdout=fh,
                              stderr=subprocess.PIPE, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(out.read_bytes().splitlines()) == 500
    version = subprocess.run([str(script), "-v"], capture_output=True, check=False)
    assert (version.returncode, version.stdout) == (0, b"")
    assert version.stderr.startswith(b"squidguard-bloom ")


def test_re2_loads_only_for_expressions_or_rewrites(tmp_path: Path) -> None:
    """A configuration without expression lists or rewrites never imports RE2."""
    (tmp_path / "domains").write_text("bad.example\n")
    (tmp_path / "expressions").write_text("porn\n")
    conf = tmp_path / "plain.conf"
    conf.write_text(f"dbhome {tmp_path}\nlogdir {tmp_path}\n"
                    "dest bad {\n    domainlist domains\n}\n"
                    "acl {\n    default {\n        pass !bad all\n"
                    "        redirect http://block.example/\n    }\n}\n")
    with_expr = tmp_path / "expr.conf"
    extra = "domainlist domains\n    expressionlist expressions"
    with_expr.write_text(conf.read_text().replace("domainlist domains", extra))
    probe = ("import sys; from squidguard_bloom.helper import runtime; "
             "runtime.build(runtime.Options(config=sys.argv[1])); print('re2' in sys.modules)")
    for path, loaded in ((conf, "False"), (with_expr, "True")):
        out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True,
                             text=True, check=True)
        assert out.stdout.strip() == loaded, out.stderr
