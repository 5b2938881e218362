"""The squidGuard.conf parser: model values, every error at once, warnings, time rules."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from squidguard_bloom.config import ConfigError, load_config
from squidguard_bloom.config.model import IPEntry, PassItem

FULL = """\
dbhome {db}
logdir {logs}
time work {{
    weekly mtwhf 08:00-12:00 13:00-18:00
    weekly saturday, sunday 10:00-11:00
    date *-12-25
    date 2024-01-01-2024-01-03 09:00-10:00
}}
src lab {{
    ip 10.0.0.0/24 192.168.4.7/255.255.255.0 10.1.0.1-10.1.0.9 , 172.16.0.1
    iplist lab.ips
    user Alice bob
    userlist users.txt
    domain lab.example
    outside work
    logfile anonymous verbose lab.log
    continue
}}
dest ads {{
    domainlist ads/domains
    urllist -
    expressionlist ads/expressions
    redirect 302:http://block/?u=%u
    rewrite tidy
    within work
    log ads.log
}}
rew tidy {{
    s@(utm_[a-z]+=)[^&]*@\\1x\\@y@gi
}}
acl {{
    lab within work {{
        pass !ads any
    }} else {{
        pass none
        redirect default
        rewrite none
    }}
    default {{
        pass !ads !in-addr all
        redirect http://block/default
        logfile default.log
    }}
}}
welcome {{
    redirect http://welcome.example/?next=%u
    key user
    capacity 5000
    error 0.01
    state seen.bloom
    window 12h
    status 303
    exempt Portal.Example.
    log welcome.log
}}
emergency block http://down.example/
"""


def write_tree(tmp_path: Path) -> dict[str, Path]:
    db, logs = tmp_path / "db", tmp_path / "logs"
    for rel in ("ads/domains", "ads/expressions", "dest/ads/urllist"):
        (db / rel).parent.mkdir(parents=True, exist_ok=True)
        (db / rel).write_text("x.example\n")
    (db / "lab.ips").write_text("# comment\n10.5.0.1 10.6.0.0/16,10.7.0.1 # tail\nbad!\n")
    (db / "users.txt").write_text("carol:x:1000:1000::/home/carol:/bin/sh\nDave, eve\n")
    logs.mkdir()
    return {"db": db, "logs": logs}


def test_full_config_model(tmp_path):
    paths = write_tree(tmp_path)
    conf = tmp_path / "sg.conf"
    conf.write_text(FULL.format(**paths))
    c = load_config(conf)
    db, logs = str(paths["db"]), str(paths["logs"])
    assert (c.dbhome, c.logdir) == (db, logs)
    work = c.times["work"]
    assert len(work.elements) == 5
    assert work.elements[0].weekdays == frozenset(range(5))
    assert work.elements[2].weekdays == frozenset({5, 6})
    src = c.sources[0]
    assert src.ips[:2] == [IPEntry("mask", 0x0A000000, 0xFFFFFF00),
                           IPEntry("mask", 0xC0A80407, 0xFFFFFF00)]  # netmask form not masked
    assert IPEntry("range", 0x0A010001, 0x0A010009) in src.ips
    assert IPEntry("mask", 0x0A050001, 0xFFFFFFFF) in src.ips  # from the iplist
    assert src.users == {"alice", "bob", "carol", "dave", "eve"}
    assert src.domains == ["lab.example"] and src.cont
    assert src.log is not None and src.log.anonymous and src.log.verbose
    assert src.log.path == f"{logs}/lab.log"
    ads = c.dests["ads"]
    assert ads.domainlist == f"{db}/ads/domains"
    assert ads.urllist == f"{db}/dest/ads/urllist"
    assert ads.redirect == "302:http://block/?u=%u" and ads.rewrite == "tidy"
    rule = c.rewrites["tidy"].rules[0]
    assert (rule.pattern, rule.replacement, rule.flags) == ("(utm_[a-z]+=)[^&]*", "\\1x@y", "gi")
    lab, default = c.acls
    assert lab.restriction is not None and lab.restriction.time == "work"
    assert lab.branch.passes == [PassItem("ads", True), PassItem("all")]
    assert lab.other is not None and lab.other.redirect == "default"
    assert default.branch.passes == [PassItem("ads", True), PassItem("in-addr", True),
                                     PassItem("all")]
    assert default.branch.log is not None
    w = c.welcome
    assert w is not None
    assert (w.key, w.capacity, w.error, w.window, w.status) == ("user", 5000, 0.01, 43200, 303)
    assert w.state == f"{db}/seen.bloom" and w.exempt_hosts == frozenset({"portal.example"})
    assert c.emergency == "block http://down.example/"
    assert any("lab.ips:3" in str(d) for d in c.warnings)  # a bad iplist entry is skipped


def test_every_error_is_reported_with_its_position(tmp_path):
    conf = tmp_path / "sg.conf"
    conf.write_text(
        "time t {\n weekly xyz 08:00-09:00\n date 2024-13-01\n}\n"  # 2, 3
        "src s {\n ip 10.0.0.9-10.0.0.1 1.2.3.4/33\n}\n"  # 6, 6
        "dest d {\n domainlist nowhere/domains\n}\n"  # 9
        "dest d {\n redirect http://x/\n}\n"  # 11: twice
        "acl {\n s { pass !nope all }\n}\n"  # 15: undefined dest; no default
    )
    with pytest.raises(ConfigError) as info:
        load_config(conf, dbhome=str(tmp_path))
    text = str(info.value)
    expected = [":2:2: error: weekday format error", ":3:2: error: date format error",
                ":6:5: error: bad address '10.0.0.9-10.0.0.1'",
                ":6:23: error: bad address '1.2.3.4/33'", ":9:13: error: domainlist",
                ":11:6: error: dest 'd' is defined twice",
                ":15:11: error: dest 'nope' is not defined",
                ":14:1: error: the acl block has no 'default' entry"]
    for piece in expected:
        assert piece in text, (piece, text)
    assert all(str(conf) in line for line in text.splitlines())


def test_syntax_error_names_token_and_expectation(tmp_path):
    conf = tmp_path / "sg.conf"
    conf.write_text("dest d {\n redirect http://x/\n}\nbogus thing\nacl {\n default {\n"
                    "  pass all\n }\n}\n")
    with pytest.raises(ConfigError, match=r"sg.conf:4:1: error: found 'bogus', expected a keyword"):
        load_config(conf, dbhome=str(tmp_path))


def test_ignored_keywords_are_warnings(tmp_path):
    conf = tmp_path / "sg.conf"
    conf.write_text("ldapbinddn cn=x\nsyslog enable\nsrc s {\n ip 1.2.3.4\n"
                    " userquota 100 50 hourly\n}\nacl {\n s {\n  pass all\n  logfile s.log\n }\n"
                    " default {\n  pass dnsbl:x.org all\n }\n}\n")
    c = load_config(conf, dbhome=str(tmp_path), logdir=str(tmp_path))
    text = "\n".join(str(w) for w in c.warnings)
    for word in ("ldapbinddn", "syslog", "userquota", "dnsbl", "logfile is only honoured"):
        assert word in text, word


def test_crlf_and_indented_keywords_are_accepted(tmp_path):
    conf = tmp_path / "sg.conf"
    conf.write_bytes(b"  dest d {\r\n   redirect http://x/\r\n  }\r\nacl {\r\n default {\r\n"
                     b"  pass !d, all\r\n }\r\n}\r\n")
    c = load_config(conf, dbhome=str(tmp_path))
    assert c.acls[0].branch.passes == [PassItem("d", True), PassItem("all")]


def at(y, mo, d, h, mi):
    return time.localtime(time.mktime((y, mo, d, h, mi, 0, 0, 0, -1)))


@pytest.mark.parametrize(("spec", "when", "active"), [
    ("weekly mtwhf 08:00-18:00", at(2024, 12, 18, 10, 0), True),  # Wednesday
    ("weekly mtwhf 08:00-18:00", at(2024, 12, 18, 18, 0), False),  # end is exclusive
    ("weekly mtwhf 08:00-18:00", at(2024, 12, 22, 10, 0), False),  # Sunday
    ("weekly * 00:00-24:00", at(2024, 12, 22, 23, 59), True),
    ("weekly sundays 00:00-24:00", at(2024, 12, 22, 1, 0), True),
    ("date *-12-25", at(2031, 12, 25, 12, 0), True),
    ("date 2024-12-25", at(2024, 12, 25, 23, 59), False),  # squidGuard misses 23:59
    ("date 2024.12.20-2024.12.26 09:00-10:00", at(2024, 12, 22, 9, 30), True),
    ("date 2024-12-20-2024-12-26", at(2024, 12, 27, 9, 30), False),
])
def test_time_rules(tmp_path, spec, when, active):
    conf = tmp_path / "sg.conf"
    conf.write_text(f"time t {{\n {spec}\n}}\nacl {{\n default {{\n  pass all\n }}\n}}\n")
    assert load_config(conf, dbhome=str(tmp_path)).times["t"].active(when) is active


SQUIDGUARD = "/usr/bin/squidGuard"


@pytest.mark.parametrize(("body", "fatal"), [
    ("dest d {\n domainlist d.txt\n}\nacl {\n default {\n  pass !d all\n }\n}\n", False),
    ("acl {\n default {\n  pass !undefined all\n }\n}\n", True),
    ("src s {\n ip 10.0.0.0/33\n}\nacl {\n default {\n  pass all\n }\n}\n", True),
    ("dest d {\n domainlist missing.txt\n}\nacl {\n default {\n  pass all\n }\n}\n", True),
    ("acl {\n s {\n  pass all\n }\n}\n", True),
    ("time t {\n weekly mtwhf 08:00-18:00\n}\nacl {\n default within t {\n  pass all\n"
     " } else {\n  pass none\n }\n}\n", False),
])
def test_accepted_or_fatal_like_squidguard(tmp_path, body, fatal):
    if not Path(SQUIDGUARD).exists():
        pytest.fail("squidGuard is not installed: run ./setup.sh test")
    (tmp_path / "d.txt").write_text("x.example\n")
    conf = tmp_path / "sg.conf"
    conf.write_text(f"dbhome {tmp_path}\nlogdir {tmp_path}\n" + body)
    run = subprocess.run([SQUIDGUARD, "-c", str(conf), "-d"], input="http://a.b/ 1.2.3.4/- - GET\n",
                         capture_output=True, text=True, timeout=30, check=False)
    theirs = "emergency" in run.stderr
    try:
        load_config(conf)
        ours = False
    except ConfigError:
        ours = True
    assert (theirs, ours) == (fatal, fatal), run.stderr[-500:]
