"""squidGuard.conf: ignored keywords, CRLF, time rules, and what squidGuard itself refuses.

Model values and every error kind are in test_config_model.py and test_config_errors.py.
"""

from __future__ import annotations

import time

import pytest

from squidguard_bloom.core.config.errors import ConfigError
from squidguard_bloom.core.config.loader import load_config
from squidguard_bloom.core.config.model import PassItem
from tests.servers import run_squidguard


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
    (tmp_path / "d.txt").write_text("x.example\n")
    conf = tmp_path / "sg.conf"
    conf.write_text(f"dbhome {tmp_path}\nlogdir {tmp_path}\n" + body)
    run = run_squidguard(conf, b"http://a.b/ 1.2.3.4/- - GET\n", timeout=30)
    theirs = b"emergency" in run.stderr
    try:
        load_config(conf)
        ours = False
    except ConfigError:
        ours = True
    assert (theirs, ours) == (fatal, fatal), run.stderr[-500:]
