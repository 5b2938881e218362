"""cffi builder for squidguard_bloom.native._bloom (out-of-line API mode).

setup.py names ``build_ext.py:ffibuilder`` in ``cffi_modules``, so
``pip install .`` compiles csrc/ into the private extension
``squidguard_bloom.native._bloom``.  ``python build_ext.py`` compiles it in place
for a quick local build.  This file must stay importable on its own: it
never imports the package.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"
SOURCES = ["bloom.c", "murmur3.c", "listindex.c", "listbuild.c", "fastpath.c", "fp_parse.c",
           "fp_decide.c", "fp_write.c", "accesslog.c"]
HEADERS = ["bloom.h", "listindex.h", "listbuild.h", "fastpath.h", "accesslog.h"]


def _cdef() -> str:
    """The parts of the headers between the cdef markers: the whole C API."""
    parts = []
    for name in HEADERS:
        header = (CSRC / name).read_text(encoding="utf-8")
        match = re.search(r"/\* cdef-begin.*?\*/(.*)/\* cdef-end \*/", header, re.S)
        if match is None:
            msg = f"csrc/{name} lost its cdef-begin / cdef-end markers"
            raise RuntimeError(msg)
        parts.append(match.group(1))
    return "\n".join(parts)


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "squidguard_bloom.native._bloom",
    '#include "bloom.h"\n#include "listindex.h"\n#include "listbuild.h"\n#include "fastpath.h"'
    '\n#include "accesslog.h"',
    # Relative paths: setuptools refuses absolute ones in an sdist build.
    sources=[os.path.relpath(CSRC / name) for name in SOURCES],
    include_dirs=[os.path.relpath(CSRC)],
    extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror"],
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE), verbose=True)
