"""Every error kind: its file:line:col, its message, and all of them at once."""

from __future__ import annotations

import os

import pytest

from squidguard_bloom.core.config.errors import ConfigError
from squidguard_bloom.core.config.loader import load_config
from squidguard_bloom.core.config.parser import Parser
from squidguard_bloom.errors import SquidguardBloomError

from .conftest import DEFAULT_ACL


def test_config_error_is_a_package_error():
    assert issubclass(ConfigError, SquidguardBloomError)


def test_syntax_error_names_token_and_expectation(tree):
    assert tree.errors("bogus thing\n" + DEFAULT_ACL) == [
        "1:1: error: found 'bogus', expected a keyword (dbhome, logdir, time, src, dest, "
        "rewrite, acl, welcome or emergency)"]


@pytest.mark.parametrize(("text", "expected"), [
    # block structure
    ("dest d\n redirect http://x/\n}\n" + DEFAULT_ACL,
     "2:2: error: found 'redirect', expected '{'"),
    ("dest {\n}\n" + DEFAULT_ACL, "1:6: error: found '{', expected a name after dest"),
    ("acl {\n default {\n  pass all\n }\n", "5:1: error: found the end of file, expected '}' "
                                           "to close acl (opened at line 1)"),
    ("dest d {\n redirect http://x/ extra\n}\n" + DEFAULT_ACL,
     "2:21: error: found 'extra', expected one URL after redirect"),
    ("dest d {\n bogus x\n}\n" + DEFAULT_ACL,
     "2:2: error: found 'bogus', expected domainlist, urllist, expressionlist, redirect, "
     "rewrite, within, outside or logfile"),
    ("src s {\n ip\n}\n" + DEFAULT_ACL, "2:4: error: found the newline, expected addresses "
                                        "after ip"),
    # names squidGuard's lexer refuses
    ("dest log {\n redirect http://x/\n}\n" + DEFAULT_ACL,
     "1:6: error: found 'log', expected a name ('log' is a squidGuard keyword; choose another "
     "name, or quote a path)"),
    ("dest 9d {\n redirect http://x/\n}\n" + DEFAULT_ACL,
     "1:6: error: found '9d', expected a name (it must start with a letter or / and hold only "
     "letters, digits and /_-.:%+@,?=&*; quote a path that starts otherwise)"),
    ('dest "d" {\n redirect http://x/\n}\n' + DEFAULT_ACL,
     "1:6: error: found 'd', expected a name (squidGuard takes no quotes here)"),
    ('dest d {\n redirect "http://x/"\n}\n' + DEFAULT_ACL,
     "2:11: error: found 'http://x/', expected a redirect URL (squidGuard takes no quotes "
     "here)"),
    ("dest d {\n redirect 200:http://x/\n}\n" + DEFAULT_ACL,
     "2:11: error: found '200:http://x/', expected a redirect URL (it must start with a "
     "letter, / or a 301:/302:/303: prefix and hold no quotes, @, ;, [ or blanks)"),
    ("rew r {\n s@a.b@c@\n}\n" + DEFAULT_ACL,
     "2:2: error: found 's@a.b@c@', expected a rule holding a character squidGuard cannot "
     "read as a name (e.g. ^ $ ( [ \\ or a blank); write s@^…@…@"),
    ("rew r {\n s@^a@b@x\n}\n" + DEFAULT_ACL,
     "2:2: error: found 's@^a@b@x', expected a rule s@REGEX@REPLACEMENT@FLAGS (\\@ for @; "
     "flags of g i r R)"),
    # time lines
    ("time t {\n weekly mtwhf\n}\n" + DEFAULT_ACL,
     "2:14: error: found the newline, expected a time range HH:MM-HH:MM (two digits each)"),
    ("time t {\n weekly * 8:00-09:00\n}\n" + DEFAULT_ACL,
     "2:11: error: found '8:00-09:00', expected a time range HH:MM-HH:MM (two digits each)"),
    ("time t {\n weekly mtwhf sat 08:00-09:00\n}\n" + DEFAULT_ACL,
     "2:15: error: found 'sat', expected a time range HH:MM-HH:MM (two digits each)"),
    ("time t {\n weekly Mon 08:00-09:00\n}\n" + DEFAULT_ACL,
     "2:9: error: weekday format error in 'Mon': 'o' is not a day letter; use letters of "
     "smtwhfa (s=Sun m=Mon t=Tue w=Wed h=Thu f=Fri a=Sat), lower-case day names (mon, "
     "monday, mondays …) or *"),
    ("time t {\n date 2024-13-01\n}\n" + DEFAULT_ACL,
     "2:7: error: date format error in '2024-13-01': month must be 01-12, day 01-31"),
    ("time t {\n date 2024-12-32 08:00-09:00\n}\n" + DEFAULT_ACL,
     "2:7: error: date format error in '2024-12-32': month must be 01-12, day 01-31"),
    ("time t {\n date 2024-1-5\n}\n" + DEFAULT_ACL,
     "2:7: error: found '2024-1-5', expected a date YYYY-MM-DD (* allowed in any part) or a "
     "range YYYY-MM-DD-YYYY-MM-DD"),
    ("time t {\n hourly 08:00-09:00\n}\n" + DEFAULT_ACL,
     "2:2: error: found 'hourly', expected weekly or date"),
    # addresses
    ("src s {\n ip 10.0.0.0/33\n}\n" + DEFAULT_ACL,
     "2:5: error: prefix error /33 in '10.0.0.0/33': use /0 to /32"),
    ("src s {\n ip 10.0.0.9-10.0.0.1\n}\n" + DEFAULT_ACL,
     "2:5: error: iprange error in '10.0.0.9-10.0.0.1': the first address must not be above "
     "the second"),
    ("src s {\n ip 1.2.3.4 256.1.1.1\n}\n" + DEFAULT_ACL,
     "2:13: error: address error in '256.1.1.1': each part must be 0-255"),
    ("src s {\n ip 10.1\n}\n" + DEFAULT_ACL,
     "2:5: error: address error in '10.1': expected A.B.C.D, A.B.C.D/NN, A.B.C.D/M.M.M.M or "
     "A.B.C.D-E.F.G.H (or the same forms in IPv6)"),
    # names: undefined, twice
    ("acl {\n default {\n  pass !nope all\n }\n}\n",
     "3:8: error: dest 'nope' is not defined; add a 'dest nope { … }' block above this line "
     "or fix the name"),
    ("acl {\n lab {\n  pass all\n }\n default {\n  pass all\n }\n}\n",
     "2:2: error: src 'lab' is not defined; add a 'src lab { … }' block above this line or "
     "fix the name"),
    ("src s {\n ip 1.2.3.4\n within never\n}\n" + DEFAULT_ACL,
     "3:9: error: time 'never' is not defined; add a 'time never { … }' block above this line "
     "or fix the name"),
    ("acl {\n default {\n  pass all\n  rewrite nor\n }\n}\n",
     "4:11: error: rewrite 'nor' is not defined; add a 'rew nor { … }' block above this line "
     "or fix the name"),
    ("dest d {\n redirect http://x/\n}\ndest d {\n redirect http://y/\n}\n" + DEFAULT_ACL,
     "4:6: error: dest 'd' is defined twice (first at line 1); rename or merge one"),
    ("src s {\n ip 1.1.1.1\n}\nsource s {\n ip 2.2.2.2\n}\n" + DEFAULT_ACL,
     "4:8: error: source 's' is defined twice (first at line 1); rename or merge one"),
    ("time t {\n}\ntime t {\n}\n" + DEFAULT_ACL,
     "3:6: error: time 't' is defined twice (first at line 1); rename or merge one"),
    ("rew r {\n s@^a@b@\n}\nrew r {\n s@^a@c@\n}\n" + DEFAULT_ACL,
     "4:5: error: rew 'r' is defined twice (first at line 1); rename or merge one"),
    ("dbhome /a\ndbhome /b\n" + DEFAULT_ACL,
     "2:1: error: dbhome is set twice (first at line 1); keep one"),
    ("logdir /a\nlogdir /b\n" + DEFAULT_ACL,
     "2:1: error: logdir is set twice (first at line 1); keep one"),
    # acl structure
    ("acl {\n}\n", "1:1: error: the acl block has no 'default' entry; add one, e.g.: default "
                   "{ pass all }"),
    ("dest d {\n redirect http://x/\n}\n",
     "4:1: error: found the end of file, expected an acl block; add one with a default entry, "
     "e.g.: acl { default { pass all } }"),
    (DEFAULT_ACL + DEFAULT_ACL,
     "6:1: error: a second acl block (the first is at line 1); merge them into one"),
    ("acl {\n default {\n  bogus\n }\n}\n",
     "3:3: error: found 'bogus', expected pass, redirect, rewrite or logfile"),
])
def test_error(tree, text, expected):
    assert tree.errors(text) == [expected]


def test_missing_list_file_names_the_line_the_path_and_what_to_do(tree):
    text = "dest ads {\n domainlist ads/domains\n urllist -\n}\n" + DEFAULT_ACL
    assert tree.errors(text) == [
        f"2:13: error: domainlist {tree.db}/ads/domains does not exist; create it, fix the "
        f"path (a relative path is taken from dbhome {tree.db}), or make it readable by the "
        "user the helper runs as",
        f"3:10: error: urllist {tree.db}/dest/ads/urllist does not exist; create it, fix the "
        f"path (a relative path is taken from dbhome {tree.db}), or make it readable by the "
        "user the helper runs as",
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_list_file(tree):
    path = tree.file("ads/domains")
    path.chmod(0)
    (line,) = tree.errors("dest ads {\n domainlist ads/domains\n}\n" + DEFAULT_ACL)
    assert line.startswith(f"2:13: error: domainlist {path} cannot be read;")


def test_list_path_that_is_a_directory_is_refused(tree):
    (tree.db / "ads").mkdir()
    (line,) = tree.errors("dest x {\n domainlist ads\n}\n" + DEFAULT_ACL)
    assert line.startswith(f"2:13: error: domainlist {tree.db}/ads cannot be read;")


def test_bad_iplist_entry_names_the_list_file_line_and_the_config_line(tree):
    ips = tree.file("lab.ips", "10.0.0.1\n\n  10.0.0.0/40\n")
    text = "src s {\n iplist lab.ips\n}\n" + DEFAULT_ACL
    with pytest.raises(ConfigError) as info:
        tree.load(text)
    assert str(info.value) == (f"{ips}:3:3: error: prefix error /40 in '10.0.0.0/40': use /0 "
                               f"to /32 (in the iplist named at {tree.conf}:2)")


def test_unreadable_config():
    with pytest.raises(ConfigError, match=r"^/nonexistent/sg.conf:1:1: error: cannot read the "
                                          r"configuration: No such file or directory"):
        load_config("/nonexistent/sg.conf")


def test_all_errors_are_reported_at_once_in_file_order(tree):
    text = ("time t {\n weekly xyz 08:00-09:00\n date 2024-13-01\n}\n"  # 2, 3
            "src s {\n ip 10.0.0.9-10.0.0.1 1.2.3.4/33\n}\n"  # 6, 6
            "dest d {\n domainlist nowhere/domains\n}\n"  # 9
            "dest d {\n redirect http://x/\n}\n"  # 11
            "bogus\n"  # 14
            "acl {\n s {\n pass !nope all\n }\n}\n")  # 18 undefined, 15 no default
    got = tree.errors(text)
    assert [line.split(": error")[0] for line in got] == [
        "2:9", "3:7", "6:5", "6:23", "9:13", "11:6", "14:1", "15:1", "17:7"]
    assert "weekday format error in 'xyz'" in got[0]
    assert "dest 'nope' is not defined" in got[-1]


def test_error_lines_carry_the_config_path(tree):
    tree.write("acl {\n}\nbogus\n")
    with pytest.raises(ConfigError) as info:
        load_config(tree.conf)
    text = str(info.value)
    assert text.splitlines() == [str(d) for d in info.value.diagnostics]
    assert all(line.startswith(f"{tree.conf}:") and ": error: " in line
               for line in text.splitlines())
    assert len(info.value.diagnostics) == 2


def test_emergency_setting_is_known_even_when_the_file_fails(tree):
    tree.write("emergency block http://down/\nbogus\n" + DEFAULT_ACL)
    with pytest.raises(ConfigError) as info:
        load_config(tree.conf)
    assert info.value.emergency == "block http://down/"


def test_forward_references_are_accepted_with_a_warning(tree):
    """squidGuard 1.6 refuses a name used before its block (and stops filtering); we
    resolve it and warn that squidGuard would not read the file."""
    c = tree.load("dest d {\n redirect http://x/\n rewrite r\n}\nrew r {\n s@^a@b@\n}\n"
                  "acl {\n lab {\n  pass !d all\n }\n default {\n  pass all\n }\n}\n"
                  "src lab {\n ip 10.0.0.0/8\n}\n")
    assert c.dests["d"].rewrite == "r"
    assert [a.source for a in c.acls] == ["lab", "default"]
    assert [s.name for s in c.sources] == ["lab"]
    got = tree.warnings(tree.conf.read_text())
    assert any(w.startswith("3:10: warning: rewrite 'r' is used before its definition at "
                            "line 5: accepted, but squidGuard 1.6 refuses it") for w in got), got
    assert any(w.startswith("9:2: warning: src 'lab' is used before its definition at line 16")
               for w in got), got


# One brace too few or too many is one error naming the block, and the rest of the
# file is still checked: each case below also holds a later, unrelated mistake
# (an undefined name, a bad keyword) that must be reported after the recovery.
BLOCK_ACL = "acl {\n default {\n  pass !ads all\n }\n}\n"
UNDEFINED_NOPE = ("error: dest 'nope' is not defined; add a 'dest nope { … }' block above "
                  "this line or fix the name")


@pytest.mark.parametrize(("text", "expected"), [
    # dest: the admin's usual slip (the example, line for line)
    ("dbhome {db}\n\ndest ads {\n    domainlist ads/domains\n\n"
     "acl {\n    default {\n        pass !ads !nope all\n    }\n}\n",
     ["6:1: error: 'acl' inside dest ads (opened at line 3); is a '}' missing before it?",
      f"8:19: {UNDEFINED_NOPE}"]),
    ("dest ads {\n domainlist ads/domains\n\ndest porn {\n redirect http://x/\n}\n"
     "acl {\n default {\n  pass !ads !porn !nope all\n }\n}\n",
     ["4:1: error: 'dest' inside dest ads (opened at line 1); is a '}' missing before it?",
      f"9:19: {UNDEFINED_NOPE}"]),
    ("dest ads {\n domainlist ads/domains\n\nrewrite r {\n s@^a@b@\n}\n"
     "acl {\n default {\n  pass !ads !nope all\n }\n}\n",
     ["4:1: error: 'rewrite' inside dest ads (opened at line 1); is a '}' missing before it?",
      f"9:13: {UNDEFINED_NOPE}"]),
    # src, time, rewrite, welcome
    ("src kids {\n ip 10.0.0.0/8\n\nacl {\n kids {\n  pass none\n }\n default {\n"
     "  pass !nope all\n }\n}\n",
     ["4:1: error: 'acl' inside src kids (opened at line 1); is a '}' missing before it?",
      f"9:8: {UNDEFINED_NOPE}"]),
    ("time school {\n weekly mtwhf 08:00-16:00\n\nsrc kids {\n ip 10.0.0.0/8\n"
     " within schol\n}\n" + DEFAULT_ACL,
     ["4:1: error: 'src' inside time school (opened at line 1); is a '}' missing before it?",
      "6:9: error: time 'schol' is not defined; add a 'time schol { … }' block above this "
      "line or fix the name"]),
    ("rewrite safe {\n s@(google\\..*/search\\?.*q=.*)@\\1\\&safe=active@i\n\n"
     "dest ads {\n bogus 1\n}\n" + DEFAULT_ACL,
     ["4:1: error: 'dest' inside rewrite safe (opened at line 1); is a '}' missing before it?",
      "5:2: error: found 'bogus', expected domainlist, urllist, expressionlist, redirect, "
      "rewrite, within, outside or logfile"]),
    ("welcome {\n redirect http://welcome.example/?u=%u\n\nacl {\n default {\n"
     "  pass !nope all\n }\n}\n",
     ["4:1: error: 'acl' inside welcome (opened at line 1); is a '}' missing before it?",
      f"6:8: {UNDEFINED_NOPE}"]),
    # acl, and its entries (the next entry, or its else, shows where one ends)
    ("acl {\n default {\n  pass !nope all\n }\n\nwelcome {\n redirect http://w.example/\n"
     " bogus 1\n}\n",
     [f"3:8: {UNDEFINED_NOPE}",
      "6:1: error: 'welcome' inside acl (opened at line 1); is a '}' missing before it?",
      "8:2: error: found 'bogus', expected one of redirect, key, capacity, error, state, "
      "window, status, exempt, log, logfile, shared, shared-user, shared-password-file, "
      "shared-deadline, shared-fallback, shared-shards, shared-prefix"]),
    ("src kids {\n ip 10.0.0.0/8\n}\nacl {\n kids {\n  pass none\n default {\n"
     "  pass !nope all\n }\n}\n",
     ["7:2: error: 'default' inside acl entry kids (opened at line 5); is a '}' missing "
      "before it?",
      f"8:8: {UNDEFINED_NOPE}"]),
    ("time t {\n}\nsrc kids {\n ip 10.0.0.0/8\n}\nacl {\n kids within t {\n  pass none\n"
     " else {\n  pass !nope all\n }\n default {\n  pass all\n }\n}\n",
     ["9:2: error: 'else' inside acl entry kids (opened at line 7); is a '}' missing "
      "before it?",
      f"10:8: {UNDEFINED_NOPE}"]),
    ("time t {\n}\nsrc kids {\n ip 10.0.0.0/8\n}\nacl {\n kids within t {\n  pass none\n"
     " } else {\n  pass all\n default {\n  pass !nope all\n }\n}\n",
     ["11:2: error: 'default' inside else of acl entry kids (opened at line 9); is a '}' "
      "missing before it?",
      f"12:8: {UNDEFINED_NOPE}"]),
    # at the end of the file
    ("acl {\n default {\n  pass !nope all\n }\n}\ndest ads {\n domainlist ads/domains\n",
     [f"3:8: {UNDEFINED_NOPE}",
      "8:1: error: found the end of file, expected '}' to close dest ads (opened at line 6)"]),
    # two missing: two errors
    ("dest ads {\n domainlist ads/domains\n\ndest porn {\n redirect http://x/\n\n" + BLOCK_ACL,
     ["4:1: error: 'dest' inside dest ads (opened at line 1); is a '}' missing before it?",
      "7:1: error: 'acl' inside dest porn (opened at line 4); is a '}' missing before it?"]),
    # one too many: the block goes on, up to its own '}'
    ("dest ads {\n domainlist ads/domains\n }\n redirect http://x/\n bogus 1\n}\n" + BLOCK_ACL,
     ["4:2: error: 'redirect' after the end of dest ads (closed at line 3); is that '}' one "
      "too many?",
      "5:2: error: found 'bogus', expected domainlist, urllist, expressionlist, redirect, "
      "rewrite, within, outside or logfile"]),
    ("src kids {\n ip 10.0.0.0/8\n}\nacl {\n kids {\n  pass none\n }}\n default {\n"
     "  pass !nope all\n }\n}\n",
     ["8:2: error: 'default' after the end of acl (closed at line 7); is that '}' one too "
      "many?",
      f"9:8: {UNDEFINED_NOPE}"]),
    ("acl {\n default {\n  pass all\n }\n  redirect http://x/\n  rewrite nor\n }\n}\n",
     ["5:3: error: 'redirect' after the end of acl entry default (closed at line 4); is that "
      "'}' one too many?",
      "6:11: error: rewrite 'nor' is not defined; add a 'rew nor { … }' block above this line "
      "or fix the name"]),
    ("dest ads {\n domainlist ads/domains\n}\n}\nacl {\n default {\n  pass !ads !nope all\n"
     " }\n}\n",
     ["4:1: error: '}' closes no block (dest ads was closed at line 3); is it one too many?",
      f"7:13: {UNDEFINED_NOPE}"]),
    ("}\n" + DEFAULT_ACL + "}\n",
     ["1:1: error: '}' closes no block; is it one too many?",
      "7:1: error: '}' closes no block (acl was closed at line 6); is it one too many?"]),
    # a block where none belongs is skipped whole after one error
    ("dest ads {\n domainlist ads/domains\n foo {\n  x y\n }\n}\n" + BLOCK_ACL,
     ["3:2: error: found 'foo', expected domainlist, urllist, expressionlist, redirect, "
      "rewrite, within, outside or logfile"]),
])
def test_one_brace_too_few_or_too_many_is_one_error(tree, text, expected):
    tree.file("ads/domains")
    assert tree.errors(text.replace("{db}", str(tree.db))) == expected


def test_brace_recovery_keeps_what_follows(tree):
    """After the error, what follows the missing or extra '}' is read as it was meant: the
    next block is defined, the continued block keeps its statements (the helper would not
    use the file, but --check lists the real problems, and only those)."""
    parser = Parser("sg.conf", "dest ads {\n domainlist ads/domains\n\ndest porn {\n"
                    " redirect http://x/\n }\n log porn.log\n}\n" + BLOCK_ACL)
    parser.parse()
    assert [str(d) for d in parser.diags] == [
        "sg.conf:4:1: error: 'dest' inside dest ads (opened at line 1); is a '}' missing "
        "before it?",
        "sg.conf:7:2: error: 'log' after the end of dest porn (closed at line 6); is that '}' "
        "one too many?"]
    assert sorted(parser.dests) == ["ads", "porn"]
    assert parser.dests["porn"].redirect == "http://x/"
    assert [(f.owner.name, f.kind, f.tok.text) for f in parser.files] == [
        ("ads", "domainlist", "ads/domains"), ("porn", "log", "porn.log")]
    assert [a.source for a in parser.acls] == ["default"]


def test_names_that_look_like_block_keywords_stay_valid(tree):
    """No false alarm: a dest's own 'rewrite NAME' line, and an acl entry for a src named
    'welcome' (welcome is not a squidGuard keyword), are statements, not missing braces."""
    tree.file("ads/domains")
    c = tree.load("rew r {\n s@^a@b@\n}\ndest ads {\n domainlist ads/domains\n rewrite r\n}\n"
                  "src welcome {\n ip 10.0.0.0/8\n}\n"
                  "acl {\n welcome {\n  pass none\n  rewrite r\n }\n default {\n"
                  "  pass !ads all\n }\n}\n")
    assert c.dests["ads"].rewrite == "r"
    assert [a.source for a in c.acls] == ["welcome", "default"]
