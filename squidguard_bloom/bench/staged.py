"""Our helper as an installation runs it, for timing its start-up honestly.

A development tree differs from an installed wheel in two ways that show in
a start-up measured in milliseconds: with ``PYTHONDONTWRITEBYTECODE`` set
(as in some development shells) every start compiles the package's sources
again, and an editable install puts a finder in ``site`` that imports
``pathlib`` and more before anything runs.  An installation (``pip install``
of the wheel, ``./setup.sh system-install``) has neither: pip writes the
``.pyc`` files at install time and a plain console script.

:func:`stage` builds that: a fresh venv on this interpreter, a copy of the
package as it is imported now (its compiled extension included),
byte-compiled, a ``.pth`` line for the directory holding the dependencies
(cffi, mmh3, google-re2; the ``.pth`` files found there are not run, so no
editable finder), and the console script written the way pip writes it
for the entry point the installed metadata names.
"""

from __future__ import annotations

import compileall
import importlib.metadata
import shutil
import sysconfig
import venv
from pathlib import Path

import squidguard_bloom

#: What pip (26; setup.sh upgrades it) writes as a console script for MODULE:FUNCTION,
#: its shebang aside.
SCRIPT = """\
import sys
from {module} import {function}
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit({function}())
"""

DESCRIPTION = (
    "ours runs from a staged install (the package and its compiled extension copied into a "
    "fresh venv on this Python, byte-compiled, pip's console script, no editable finder)"
)


def _site_packages(env_dir: Path) -> Path:
    paths = sysconfig.get_paths(vars={"base": str(env_dir), "platbase": str(env_dir)})
    return Path(paths["purelib"])


def entry_point() -> str:
    """MODULE:FUNCTION of the ``squidguard-bloom`` console script, as installed."""
    for ep in importlib.metadata.entry_points(group="console_scripts", name="squidguard-bloom"):
        return ep.value
    return "squidguard_bloom.helper.cli:command"  # not installed: what pyproject.toml says


def stage(directory: Path) -> tuple[list[str], str]:
    """Install the running package into directory/venv; (helper command, its python)."""
    env_dir = directory / "venv"
    if env_dir.exists():
        shutil.rmtree(env_dir)
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = env_dir / "bin" / "python"
    site = _site_packages(env_dir)
    package = Path(squidguard_bloom.__file__).resolve().parent
    shutil.copytree(
        package, site / package.name, ignore=shutil.ignore_patterns("__pycache__", "*.c", "*.o")
    )
    compileall.compile_dir(site / package.name, quiet=1)
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "squidguard-bloom-deps.pth").write_text(
        "\n".join(sorted(deps)) + "\n", encoding="utf-8"
    )
    module, function = entry_point().split(":")
    script = env_dir / "bin" / "squidguard-bloom"
    text = SCRIPT.format(module=module, function=function)
    script.write_text(f"#!{python}\n{text}", encoding="utf-8")
    script.chmod(0o755)
    return [str(script)], str(python)
