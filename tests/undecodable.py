"""Helpers for tests of file names that are not valid UTF-8 (issue 12, part 5).

`desktop_env()` is a subprocess environment whose stdout is strict UTF-8, like a desktop's
`LANG=en_US.UTF-8` (this machine's default `C.UTF-8` makes Python's stdout surrogateescape and
hides the failure). When en_US.UTF-8 is not installed it is compiled with `localedef` into a
private LOCPATH; with no `localedef`, PYTHONIOENCODING=utf-8:strict stands in for it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.daemon.conftest import photosearch_command, subprocess_env

ODD = b"No\xebl"  # Latin-1 "Noël": not valid UTF-8


def odd_name(parent: Path, raw: bytes = ODD) -> Path:
    """`parent / raw` as Python holds it (`os.fsdecode`: the bad byte as a lone surrogate)."""
    return Path(os.fsdecode(os.fsencode(parent) + b"/" + raw))


def _base_env() -> dict:
    return {k: v for k, v in subprocess_env().items()
            if k not in ("PYTHONIOENCODING", "LC_ALL", "LC_CTYPE", "LANG", "PYTHONUTF8")}


@functools.lru_cache(maxsize=1)
def desktop_env() -> dict:
    env = {**_base_env(), "LANG": "en_US.UTF-8"}
    if not _stdout_is_strict(env) and shutil.which("localedef"):
        locales = tempfile.mkdtemp(prefix="photosearch-locale-")
        subprocess.run(["localedef", "-i", "en_US", "-f", "UTF-8", f"{locales}/en_US.UTF-8"],
                       capture_output=True, check=False)
        env["LOCPATH"] = locales
    if not _stdout_is_strict(env):
        env.pop("LOCPATH", None)
        env["PYTHONIOENCODING"] = "utf-8:strict"
    assert _stdout_is_strict(env)
    return env


def c_utf8_env() -> dict:
    return {**_base_env(), "LC_ALL": "C.UTF-8"}


def _stdout_is_strict(env: dict) -> bool:
    probe = subprocess.run([sys.executable, "-c", "import sys; print(sys.stdout.errors)"],
                           env=env, capture_output=True, text=True)
    return probe.stdout.strip() == "strict"


def photosearch(env: dict, *args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """`photosearch ARGS` in a subprocess; stdout and stderr as bytes."""
    argv = [os.fsencode(str(a)) for a in (*photosearch_command(), *args)]
    return subprocess.run(argv, env=env, capture_output=True, input=stdin, timeout=120)


def assert_clean(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
