"""The decision engine on real configs and lists (squidGuard's §5 procedure)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from squidguard_bloom.core.config.loader import load_config
from squidguard_bloom.core.engine.decision import PASS, REDIRECT, REWRITE, UNPARSABLE
from squidguard_bloom.core.engine.engine import Engine
from squidguard_bloom.helper.protocol import parse_request

# A Wednesday, 10:30 local time, and a Sunday night.
WED_1030 = time.mktime((2024, 12, 18, 10, 30, 0, 0, 0, -1))
SUN_2300 = time.mktime((2024, 12, 22, 23, 0, 0, 0, 0, -1))


def make_engine(tmp_path: Path, conf: str, lists: dict[str, str], explain: bool = False) -> Engine:
    db = tmp_path / "db"
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    for rel, text in lists.items():
        p = db / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    path = tmp_path / "sg.conf"
    path.write_text(f"dbhome {db}\nlogdir {logs}\n" + conf)
    return Engine(load_config(path), explain=explain)


def ask(engine: Engine, line: str, now: float = WED_1030):
    return engine.decide(parse_request(line.encode()), now)


LISTS = {
    "ads/domains": "doubleclick.net\nads.example.com tracker-redirect http://per-entry/?u=%u\n",
    "ads/urls": "news.example.com/ads\n",
    "porn/domains": "porn.test\n",
    "porn/expressions": "(^|[-./])xxx[-./0-9]\n",
    "white/domains": "good.example\n",
}

BASIC = """
src kids { ip 10.0.0.0/24 }
src staff { ip 10.0.1.1-10.0.1.50 }
dest white { domainlist white/domains }
dest ads { domainlist ads/domains
           urllist ads/urls
           redirect http://block/ads?u=%u&c=%a&s=%s&t=%t }
dest porn { domainlist porn/domains
            expressionlist porn/expressions }
acl {
    staff { pass all }
    kids { pass white none }
    default { pass !ads !porn all
              redirect 301:http://block/default?t=%t&u=%u }
}
"""


def test_dest_redirect_with_template_values(tmp_path):
    e = make_engine(tmp_path, BASIC, LISTS)
    d = ask(e, "http://www.DoubleClick.net/x 192.168.1.5/- - GET")
    assert d.action == REWRITE  # no 30x: prefix -> rewrite-url, as squidGuard
    assert d.url == "http://block/ads?u=http://www.DoubleClick.net/x&c=192.168.1.5&s=default&t=ads"
    assert d.target == "ads"
    assert d.source == "default"


def test_default_redirect_status_prefix_and_terminators(tmp_path):
    e = make_engine(tmp_path, BASIC, LISTS)
    d = ask(e, "http://porn.test/ 192.168.1.5/- - GET")
    assert (d.action, d.status) == (REDIRECT, 301)
    assert d.url == "http://block/default?t=porn&u=http://porn.test/"
    d = ask(e, "http://foo.xxx.example/ 192.168.1.5/- - GET")  # expression hit
    assert d.action == REDIRECT
    assert ask(e, "http://example.org/ 192.168.1.5/- - GET").action == PASS


def test_per_entry_redirect_wins(tmp_path):
    e = make_engine(tmp_path, BASIC, LISTS)
    # the per-entry redirect is the rest of the list line, as squidGuard reads it
    d = ask(e, "http://ads.example.com/ 192.168.1.5/- - GET")
    assert d.action == REWRITE
    assert d.url == "tracker-redirect http://per-entry/?u=http://ads.example.com/"


def test_url_list_is_prefix_match(tmp_path):
    e = make_engine(tmp_path, BASIC, LISTS)
    assert ask(e, "http://news.example.com/adsense 192.168.1.5/- - GET").action != PASS
    assert ask(e, "http://news.example.com/sport 192.168.1.5/- - GET").action == PASS


def test_source_acl_none_terminator_and_whitelist(tmp_path):
    e = make_engine(tmp_path, BASIC, LISTS)
    assert ask(e, "http://good.example/ 10.0.0.7/- - GET").action == PASS
    d = ask(e, "http://example.org/ 10.0.0.7/- - GET")
    assert d.action == REDIRECT and d.source == "kids" and d.target == "none"
    # staff pass all, even for ads
    assert ask(e, "http://doubleclick.net/ 10.0.1.20/- - GET").action == PASS
    # just outside the staff range: default acl
    assert ask(e, "http://doubleclick.net/ 10.0.1.51/- - GET").source == "default"


def test_no_host_is_unparsable(tmp_path):
    e = make_engine(tmp_path, BASIC, LISTS)
    assert ask(e, "http:///x 10.0.0.7/- - GET").action == UNPARSABLE


TIMED = """
time weekdays { weekly mtwhf 08:00-18:00 }
src lab { ip 10.0.0.0/8 }
dest ads { domainlist ads/domains }
acl {
    lab within weekdays { pass !ads all
                          redirect http://block/work } else { pass all }
    default { pass none
              redirect http://block/default }
}
"""


def test_time_restricted_acl_and_else(tmp_path):
    e = make_engine(tmp_path, TIMED, LISTS)
    d = ask(e, "http://doubleclick.net/ 10.1.1.1/- - GET", WED_1030)
    assert (d.action, d.url) == (REWRITE, "http://block/work")
    assert ask(e, "http://doubleclick.net/ 10.1.1.1/- - GET", SUN_2300).action == PASS


CONT = """
src first { ip 10.0.0.0/8
            continue }
src second { ip 10.2.0.0/16 }
dest ads { domainlist ads/domains }
acl {
    first { pass all }
    second { pass !ads all
             redirect http://block/second }
    default { pass all
              redirect http://block/default }
}
"""


def test_continue_hands_unchanged_requests_on(tmp_path):
    e = make_engine(tmp_path, CONT, LISTS)
    d = ask(e, "http://doubleclick.net/ 10.2.3.4/- - GET")
    assert (d.action, d.source) == (REWRITE, "second")
    assert ask(e, "http://doubleclick.net/ 10.3.3.4/- - GET").action == PASS


REW = """
rewrite tidy { s@(utm_[a-z]+=)[^&]*@\\1x@g }
rewrite move { s@^http://old\\.example/(.*)$@http://new.example/\\1@r }
src movers { ip 10.9.0.0/16 }
acl {
    movers { pass all
             rewrite move }
    default { pass all
              rewrite tidy }
}
"""


def test_rewrites_on_pass(tmp_path):
    e = make_engine(tmp_path, REW, LISTS)
    d = ask(e, "http://a.example/?utm_source=x&utm_medium=y&q=1 1.2.3.4/- - GET")
    assert (d.action, d.url) == (REWRITE, "http://a.example/?utm_source=x&utm_medium=x&q=1")
    d = ask(e, "http://old.example/p/q 10.9.1.1/- - GET")
    assert (d.action, d.status, d.url) == (REDIRECT, 302, "http://new.example/p/q")
    assert ask(e, "http://plain.example/ 1.2.3.4/- - GET").action == PASS


LOGS = """
src kids { ip 10.0.0.0/24
           logfile kids.log }
dest ads { domainlist ads/domains
           redirect http://block/ads
           logfile ads.log }
dest porn { domainlist porn/domains }
acl {
    kids { pass !ads !porn none
           redirect http://block/kids }
    default { pass !ads !porn all
              redirect http://block/default
              logfile anonymous default.log }
}
"""


def test_log_file_selection(tmp_path):
    e = make_engine(tmp_path, LOGS, LISTS)
    logs = tmp_path / "logs"
    d = ask(e, "http://doubleclick.net/ 10.0.0.5/- Alice GET")
    assert d.log == ((str(logs / "ads.log"),
                      "Request(kids/ads/-) http://doubleclick.net/ 10.0.0.5/- alice GET REDIRECT"),)
    d = ask(e, "http://porn.test/ 10.0.0.5/- alice GET")  # dest without logfile: source's
    assert d.log[0][0] == str(logs / "kids.log")
    d = ask(e, "http://other.example/ 10.0.0.5/- alice GET")  # terminator: default's, anonymous
    assert d.log == ((str(logs / "default.log"),
                      "Request(kids/none/-) http://other.example/ 10.0.0.5/- - GET REDIRECT"),)
    assert ask(e, "http://other.example/ 1.2.3.4/- alice GET").log == ()  # pass, not verbose


def test_in_addr(tmp_path):
    conf = "acl { default { pass !in-addr all\n redirect http://block/ip } }\n"
    e = make_engine(tmp_path, conf, {})
    for url in ("http://10.9.8.7/", "http://2130706433/", "http://[::1]/", "1.2.3.4:443"):
        method = "CONNECT" if "://" not in url else "GET"
        assert ask(e, f"{url} 1.2.3.4/- - {method}").action != PASS, url
    assert ask(e, "http://example.org/ 1.2.3.4/- - GET").action == PASS


def test_explanation_names_source_acl_dest_and_entry(tmp_path):
    e = make_engine(tmp_path, BASIC, LISTS, explain=True)
    why = ask(e, "http://x.doubleclick.net/ 192.168.1.5/- - GET").explanation
    assert "acl default" in why and "dest ads" in why and "doubleclick.net" in why


@pytest.mark.parametrize("client", ["", "garbage", "::1", "256.1.1.1"])
def test_odd_clients_fall_to_default(tmp_path, client):
    e = make_engine(tmp_path, BASIC, LISTS)
    line = f"http://doubleclick.net/ {client or '-'}/- - GET"
    assert ask(e, line).source == "default"
