"""squidGuard's regular expressions (POSIX extended) written for RE2.

Expression lists (:mod:`squidguard_bloom.core.lists`) and rewrite rules
(:mod:`squidguard_bloom.core.engine.rewrite`) both hold POSIX EREs and both
run them on RE2, which reads them the same way except inside brackets.
"""

from __future__ import annotations


def ere_to_re2(pattern: str) -> str:
    """POSIX ERE to RE2: outside brackets they agree; inside, ``\\`` is literal."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c != "[":
            out.append(c)
            i += 1
            continue
        j = i + 1
        if j < n and pattern[j] == "^":
            j += 1
        if j < n and pattern[j] == "]":
            j += 1
        while j < n and pattern[j] != "]":
            if pattern.startswith(("[:", "[=", "[."), j):
                end = pattern.find(pattern[j + 1] + "]", j + 2)
                j = end + 2 if end >= 0 else n
                continue
            j += 1
        body = pattern[i + 1 : j].replace("\\", "\\\\")
        out.append("[" + body + "]")
        i = j + 1
    return "".join(out)
