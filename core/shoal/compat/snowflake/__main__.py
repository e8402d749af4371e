"""``python -m shoal.compat.snowflake SCRIPT.py [args]``: run a script written for Snowflake's
Container Runtime with the reference's import paths resolving to shoal. Runs on the driver."""

from __future__ import annotations

import sys

from shoal.compat.snowflake.runner import run_script

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print("usage: python -m shoal.compat.snowflake SCRIPT.py [args...]", file=sys.stderr)
        raise SystemExit(2)
    run_script(sys.argv[1], sys.argv[2:])
