"""Differential test: the real squidGuard 1.6 and squidguard-bloom on the same input.

Both read the same config, lists and request lines at a fixed instant
(``-t``); replies and Request(...) log lines must be identical, except for
the deliberate differences declared in DIFFERENCES (docs/differences.md),
where our answer is checked to be the intended one.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

SQUIDGUARD = Path("/usr/bin/squidGuard")
OURS = Path(sys.executable).with_name("squidguard-bloom")
INSTANT = "2024-12-18T10:30:00"  # a Wednesday morning

CONF = """\
dbhome {db}
logdir {logs}
time mornings {{
    weekly mtwhf 08:00-12:00
}}
time never {{
    date 1999-01-01 00:00-00:01
}}
src kids {{
    ip 10.1.0.0/16
    logfile kids.log
}}
src staff {{
    ip 10.2.0.1-10.2.0.50
    user boss
}}
src lab {{
    ip 10.3.0.0/24
    within never
}}
dest ads {{
    domainlist ads/domains
    urllist ads/urls
    redirect 302:http://block.example/ads?u=%u&c=%a&s=%s&t=%t
    log ads.log
}}
dest porn {{
    domainlist porn/domains
    expressionlist porn/expressions
}}
dest white {{
    domainlist white/domains
}}
rewrite tidy {{
    s@(utm_[a-z]+=)[^&]*@\\1x@g
}}
acl {{
    staff {{
        pass all
    }}
    kids within mornings {{
        pass white !ads !porn none
        redirect http://block.example/kids?u=%u
    }} else {{
        pass none
    }}
    lab {{
        pass none
    }}
    default {{
        pass white !ads !porn !in-addr all
        rewrite tidy
        redirect 301:http://block.example/default?u=%u&t=%t
        logfile default.log
    }}
}}
"""

LISTS = {
    "ads/domains": "doubleclick.net\nads.example.com\ntracker.test http://per-entry.example/?u=%u\n",
    "ads/urls": "news.example.org/ads\nexample.net/banner\n",
    "porn/domains": "porn.test\nxxx.example\n",
    "porn/expressions": "(^|[-./])sex[-./0-9]\n\\.(jpe?g|png)$\n",
    "white/domains": "good.example\n",
}

HOSTS = ["doubleclick.net", "www.doubleclick.net", "ad.doubleclick.net", "DoubleClick.NET",
         "ads.example.com", "tracker.test", "porn.test", "m.xxx.example", "good.example",
         "example.org", "news.example.org", "example.net", "www.example.net", "sex.com",
         "sexy.example", "10.9.8.7", "1.2.3.4", "xdoubleclick.net", "www7.example.net"]
PATHS = ["/", "/ads", "/adsense", "/banner.gif", "/x/y", "/pic.JPG", "/?utm_source=a&b=1",
         "/a//b", "/p?q=1", "/ads#frag", "/x.png#top", "/y#a.png"]
CLIENTS = ["10.1.2.3/-", "10.1.2.3/pc.lab", "10.2.0.7/-", "10.3.0.5/-", "192.168.1.1/-",
           "10.2.0.60/-"]
USERS = ["-", "boss", "Boss", "alice"]


def corpus() -> list[str]:
    rnd = random.Random(20241218)
    lines = []
    for _ in range(400):
        host = rnd.choice(HOSTS)
        scheme = rnd.choice(["http://", "http://", "https://", "ftp://"])
        port = rnd.choice(["", "", ":8080"])
        method = rnd.choice(["GET", "GET", "POST", "HEAD"])
        extras = rnd.choice(["", " myip=127.0.0.1 myport=3128"])
        url = f"{scheme}{host}{port}{rnd.choice(PATHS)}"
        lines.append(f"{url} {rnd.choice(CLIENTS)} {rnd.choice(USERS)} {method}{extras}")
    for host in HOSTS:
        lines.append(f"{host}:443 {rnd.choice(CLIENTS)} - CONNECT")
    return lines


def run(cmd: list[str], conf: Path, lines: list[str], logs: Path) -> tuple[list[str], dict]:
    for f in logs.iterdir():
        f.unlink()
    out = subprocess.run([*cmd, "-c", str(conf), "-t", INSTANT],
                         input="\n".join(lines) + "\n", capture_output=True, text=True,
                         timeout=120, check=False)
    replies = out.stdout.splitlines()
    assert len(replies) == len(lines), (cmd, out.stderr[-1000:])
    logged = {}
    for f in sorted(logs.iterdir()):
        text = f.read_text(errors="replace")
        if f.name == "squidGuard.log":
            assert "emergency" not in text.lower(), text[-1000:]
            continue
        logged[f.name] = [re.sub(r"^\S+ \S+ \[\d+\] ", "", x) for x in text.splitlines()]
    return replies, logged


def blocked_connect(line: str, theirs: str, ours: str) -> bool:
    # squidGuard answers a blocked CONNECT with rewrite-url="http://…" (the
    # browser hangs); we always answer 302.
    return (line.rsplit(maxsplit=1)[-1] == "CONNECT" and theirs.startswith('OK rewrite-url="')
            and ours == theirs.replace("OK rewrite-url=", "OK status=302 url=", 1))


DIFFERENCES = [blocked_connect]


def test_same_replies_and_logs_as_squidguard(tmp_path):
    if not SQUIDGUARD.exists():
        pytest.fail("squidGuard is not installed: run ./setup.sh test")
    db, logs = tmp_path / "db", tmp_path / "logs"
    logs.mkdir()
    for rel, text in LISTS.items():
        (db / rel).parent.mkdir(parents=True, exist_ok=True)
        (db / rel).write_text(text)
    conf = tmp_path / "sg.conf"
    conf.write_text(CONF.format(db=db, logs=logs))
    lines = corpus()
    theirs, their_logs = run([str(SQUIDGUARD)], conf, lines, logs)
    ours, our_logs = run([str(OURS)], conf, lines, logs)
    mismatches = []
    declared = set()
    for line, a, b in zip(lines, theirs, ours, strict=True):
        if a == b:
            continue
        if any(d(line, a, b) for d in DIFFERENCES):
            declared.add(line.split()[0])
            continue
        mismatches.append(f"{line}\n  squidGuard: {a}\n  ours:       {b}")
    assert not mismatches, f"{len(mismatches)} undeclared differences:\n" + "\n".join(
        mismatches[:15])
    assert sum(r != "ERR" for r in ours) > 100  # the corpus really exercises blocking
    assert declared  # the declared difference was met (and checked) at least once
    # Log lines: identical except the status of blocked CONNECT lines, which are the same text.
    assert our_logs == their_logs
