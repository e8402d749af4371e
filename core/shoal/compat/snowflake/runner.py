"""Run a script as ``__main__`` with the Snowflake compatibility layer installed, as ``python
SCRIPT.py args`` would (its folder first on ``sys.path``, ``sys.argv`` set). Used by
``python -m shoal.compat.snowflake`` and ``shoal run --snowflake-compat``. Runs on the driver."""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Sequence


def run_script(path: str, args: Sequence[str], *, compat: bool = True) -> None:
    if not os.path.isfile(path):
        raise SystemExit(f"no such script: {path}")
    if compat:
        from shoal.compat.snowflake import install

        install()
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    runpy.run_path(path, run_name="__main__")
