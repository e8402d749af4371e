"""``shoal run [--snowflake-compat] SCRIPT [ARGS]``: run a Python script on the driver, optionally
with the reference product's import paths resolving to shoal. Runs on the driver."""

from __future__ import annotations

import sys
import traceback

import click


@click.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--snowflake-compat",
    is_flag=True,
    help="Make snowflake.ml.* (distributors, jobs, data, ...) resolve to shoal.",
)
@click.argument("script", type=click.Path(exists=True, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(snowflake_compat: bool, script: str, args: tuple[str, ...]) -> None:
    """Run SCRIPT (with ARGS) as python would: the script's own error shows its traceback and
    exits 1; its sys.exit code is the command's."""
    from shoal.compat.snowflake.runner import run_script

    if snowflake_compat:
        from shoal.compat.snowflake import install

        install()  # a missing extra is shoal's one-line error, before the script starts
    try:
        run_script(script, list(args), compat=snowflake_compat)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
