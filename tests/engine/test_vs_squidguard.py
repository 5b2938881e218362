"""Differential test: the real squidGuard 1.6 and squidguard-bloom on the same input.

Both read the same config, lists and request lines at a fixed instant
(``-t``); replies and Request(...) log lines must be identical, except for
the deliberate differences declared in DIFFERENCES (docs/differences.md),
where our answer is checked to be the intended one.  The corpus mixes every
template code with every request shape (URLs with and without a scheme,
with user@, ports, queries and fragments; CONNECT to names, IPv4 and IPv6
addresses) and odd client fields (``-``, empty, ``10.1``, ``010.001.0.9``,
a trailing dot, IPv6, with and without a FQDN, ident ``-`` or a user).
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import need

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
    redirect 302:http://block.example/ads?u=%u&c=%a&s=%s&t=%t&p=%p&f=%f
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
        redirect http://block.example/kids?u=%u&a=%a&n=%n&i=%i&p=%p&f=%f&q=%q&s=%s&t=%t
    }} else {{
        pass none
    }}
    lab {{
        pass none
    }}
    default {{
        pass white !ads !porn !in-addr all
        rewrite tidy
        redirect 301:http://block.example/default?u=%u&t=%t&a=%a&f=%f&n=%n
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
         "/a//b", "/p?q=1", "/ads#frag", "/x.png#top", "/y#a.png", "", "/dir/", "/p?q=a/b"]
# Odd client fields are read as squidGuard reads them: "10.1" is 10.1.0.0 (kids),
# "010.001.0.9" 10.1.0.9, "10.2.0.7." 10.2.0.7; "-", "" and IPv6 match no source.
CLIENTS = ["10.1.2.3/-", "10.1.2.3/pc.lab", "10.2.0.7/-", "10.3.0.5/-", "192.168.1.1/-",
           "10.2.0.60/-", "10.1/-", "010.001.0.9/-", "10.2.0.7./pc.lab", "10.1.2.3",
           "-", "-/-", "-/pc.lab", "/pc.lab", "10.1.2.3/-pc.lab", "::1/-", "10/-",
           "10.1.2.300/-", "10.1.2.3%eth0/-"]
USERS = ["-", "boss", "Boss", "alice", "bo%20ss"]


def corpus() -> list[str]:
    rnd = random.Random(20241218)
    lines = []
    for _ in range(400):
        host = rnd.choice(HOSTS)
        scheme = rnd.choice(["http://", "http://", "https://", "ftp://", ""])
        port = rnd.choice(["", "", ":8080"])
        if rnd.random() < 0.1:
            host = f"user@{host}"
        method = rnd.choice(["GET", "GET", "POST", "HEAD"])
        extras = rnd.choice(["", " myip=127.0.0.1 myport=3128"])
        url = f"{scheme}{host}{port}{rnd.choice(PATHS)}"
        lines.append(f"{url} {rnd.choice(CLIENTS)} {rnd.choice(USERS)} {method}{extras}")
    for host in HOSTS:
        lines.append(f"{host}:443 {rnd.choice(CLIENTS)} - CONNECT")
    for client in ("10.1.2.3/pc.lab", "10.1/-", "-", "192.168.1.1/-"):
        for url in ("1.2.3.4:443", "10.9.8.7:8443", "[::1]:443", "[2001:db8::1]:443",
                    "porn.test:443", "good.example:443", "user@doubleclick.net:443",
                    "doubleclick.net"):
            lines.append(f"{url} {client} - CONNECT")
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
            assert "emergency mode" not in text.lower(), text[-1000:]
            continue
        logged[f.name] = [re.sub(r"^\S+ \S+ \[\d+\] ", "", x) for x in text.splitlines()]
    return replies, logged


def blocked_connect(line: str, theirs: str, ours: str) -> bool:
    # squidGuard answers a blocked CONNECT with rewrite-url="http://…" (the
    # browser hangs); we always answer 302.
    return (line.rsplit(maxsplit=1)[-1] == "CONNECT" and theirs.startswith('OK rewrite-url="')
            and ours == theirs.replace("OK rewrite-url=", "OK status=302 url=", 1))


def _ipv6_literal(url: str) -> bool:
    return url.partition("://")[2 if "://" in url else 0].rpartition("@")[2].startswith("[")


def ipv6_literal_is_an_address(line: str, theirs: str, ours: str) -> bool:
    # squidGuard reads the host of "[::1]:443" as "[", which is no address, so
    # "!in-addr" lets it through; for us it is the address ::1, blocked by default.
    return (_ipv6_literal(line.split(maxsplit=1)[0]) and theirs == "ERR"
            and ours.startswith('OK status=301 url="http://block.example/default?')
            and "&t=in-addr&" in ours)


DIFFERENCES = [blocked_connect, ipv6_literal_is_an_address]


def _comparable(logged: dict[str, list[str]]) -> dict[str, list[str]]:
    """Log lines but those of IPv6-literal URLs (blocked by us only, see above)."""
    return {name: [x for x in lines if not _ipv6_literal(x.split()[1])]
            for name, lines in logged.items()}


def run_both(tmp_path: Path, lines: list[str]) -> tuple[list[str], list[str], dict, dict]:
    """squidGuard's replies, ours, and the log lines of each, on CONF and LISTS."""
    db, logs = tmp_path / "db", tmp_path / "logs"
    logs.mkdir()
    for rel, text in LISTS.items():
        (db / rel).parent.mkdir(parents=True, exist_ok=True)
        (db / rel).write_text(text)
    conf = tmp_path / "sg.conf"
    conf.write_text(CONF.format(db=db, logs=logs))
    theirs, their_logs = run([need("squidGuard")], conf, lines, logs)
    ours, our_logs = run([str(OURS)], conf, lines, logs)
    return theirs, ours, their_logs, our_logs


def test_same_replies_and_logs_as_squidguard(tmp_path):
    lines = corpus()
    theirs, ours, their_logs, our_logs = run_both(tmp_path, lines)
    mismatches = []
    declared = set()
    for line, a, b in zip(lines, theirs, ours, strict=True):
        if a == b:
            continue
        met = [d.__name__ for d in DIFFERENCES if d(line, a, b)]
        if met:
            declared.update(met)
            continue
        mismatches.append(f"{line}\n  squidGuard: {a}\n  ours:       {b}")
    assert not mismatches, f"{len(mismatches)} undeclared differences:\n" + "\n".join(
        mismatches[:100])
    assert sum(r != "ERR" for r in ours) > 100  # the corpus really exercises blocking
    assert declared == {d.__name__ for d in DIFFERENCES}  # each met, and checked, once or more
    # Log lines: identical (a blocked CONNECT's line does not show how it was answered)
    # except for the requests we block and squidGuard passes.
    assert _comparable(our_logs) == _comparable(their_logs)
    assert _comparable(our_logs) != our_logs


KIDS = "http://block.example/kids?"


@pytest.mark.parametrize(("line", "theirs", "ours"), [
    # a GET without a scheme: rewrite-url, as any redirect without a status prefix
    ("example.org/x/y.html 10.1.2.3/pc.lab Boss GET",
     f'OK rewrite-url="{KIDS}u=example.org/x/y.html&a=10.1.2.3&n=pc.lab&i=boss&p=&f=y.html'
     '&q=noquotapc.lab&s=kids&t=none"', None),
    # %f of a CONNECT (no "/" at all) is empty; a CONNECT is answered 302 (declared)
    ("1.2.3.4:443 10.1.2.3/- - CONNECT",
     f'OK rewrite-url="{KIDS}u=1.2.3.4:443&a=10.1.2.3&n=&i=&p=&f=&q=noquota&s=kids&t=none"',
     f'OK status=302 url="{KIDS}u=1.2.3.4:443&a=10.1.2.3&n=&i=&p=&f=&q=noquota&s=kids&t=none"'),
    ("[::1]:8443 10.1.2.3/- - CONNECT",
     f'OK rewrite-url="{KIDS}u=[::1]:8443&a=10.1.2.3&n=&i=&p=&f=&q=noquota&s=kids&t=none"',
     f'OK status=302 url="{KIDS}u=[::1]:8443&a=10.1.2.3&n=&i=&p=&f=&q=noquota&s=kids&t=none"'),
    # "10.1" is 10.1.0.0 for squidGuard: the kids source (10.1.0.0/16)
    ("http://example.org/ 10.1/- - GET",
     f'OK rewrite-url="{KIDS}u=http://example.org/&a=10.1&n=&i=&p=&f=&q=noquota&s=kids&t=none"',
     None),
    # and "010.001.0.9." is 10.1.0.9: decimal parts, a trailing dot
    ("http://example.org/a 010.001.0.9./- - GET",
     f'OK rewrite-url="{KIDS}u=http://example.org/a&a=010.001.0.9.&n=&i=&p=a&f=a&q=noquota'
     '&s=kids&t=none"', None),
    # a client "-" shows as "-" in %a; it matches no source (the dest ads redirects)
    ("http://doubleclick.net/x - - GET",
     'OK status=302 url="http://block.example/ads?u=http://doubleclick.net/x&c=-&s=default'
     '&t=ads&p=x&f=x"', None),
])
def test_audit_cases_answer_as_squidguard(tmp_path, line, theirs, ours):
    """The cases of issue 10 item 3, exact: squidGuard's reply, and ours where declared."""
    got_theirs, got_ours, their_logs, our_logs = run_both(tmp_path, [line])
    assert (got_theirs, got_ours) == ([theirs], [ours or theirs])
    assert _written(our_logs) == _written(their_logs) != {}


def _written(logged: dict[str, list[str]]) -> dict[str, list[str]]:
    # squidGuard creates every log file at start; we create one at its first line
    return {name: lines for name, lines in logged.items() if lines}


def test_user_field_with_spaces(tmp_path):
    """Declared: Squid sends a user name with spaces as it is; squidGuard takes its first
    word as the user and the next as the method, we take the whole field (so "boss x" is
    not the user boss of the staff source)."""
    lines = ["http://doubleclick.net/ 10.2.0.7/- boss x GET",
             "http://example.org/p 10.1.2.3/- John Doe GET"]
    theirs, ours, their_logs, our_logs = run_both(tmp_path, lines)
    assert theirs == [
        "ERR",  # the user "boss", method "x": staff passes all
        f'OK rewrite-url="{KIDS}u=http://example.org/p&a=10.1.2.3&n=&i=john&p=p&f=p'
        '&q=noquota&s=kids&t=none"',
    ]
    assert ours == [
        'OK status=302 url="http://block.example/ads?u=http://doubleclick.net/&c=10.2.0.7'
        '&s=default&t=ads&p=&f="',  # the user "boss x" is not staff's boss
        f'OK rewrite-url="{KIDS}u=http://example.org/p&a=10.1.2.3&n=&i=john%20doe&p=p&f=p'
        '&q=noquota&s=kids&t=none"',
    ]
    assert _written(their_logs) == {"default.log": [
        "Request(kids/none/-) http://example.org/p 10.1.2.3/- john Doe REDIRECT"]}
    assert _written(our_logs) == {
        "ads.log": ["Request(default/ads/-) http://doubleclick.net/ 10.2.0.7/- boss%20x GET "
                    "REDIRECT"],
        "default.log": ["Request(kids/none/-) http://example.org/p 10.1.2.3/- john%20doe GET "
                        "REDIRECT"],
    }


def test_ipv4_mapped_client_is_its_ipv4_address(tmp_path):
    """Declared: squidGuard reads ::ffff:10.1.2.3 as no address (0.0.0.0, no source); for
    us it is 10.1.2.3, so it gets squidGuard's answer for 10.1.2.3 (the kids source)."""
    lines = ["http://example.org/ ::ffff:10.1.2.3/- - GET",
             "http://example.org/ 10.1.2.3/- - GET"]
    theirs, ours, _, _ = run_both(tmp_path, lines)
    mapped = theirs[1].replace("&a=10.1.2.3&", "&a=::ffff:10.1.2.3&")
    assert theirs == ["ERR", f'OK rewrite-url="{KIDS}u=http://example.org/&a=10.1.2.3&n=&i=&p='
                             '&f=&q=noquota&s=kids&t=none"']
    assert ours == [mapped, theirs[1]]
