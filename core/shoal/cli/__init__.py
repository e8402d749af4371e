"""The ``shoal`` command line. Runs on the driver (the user's machine).

Sub-command groups live in their own modules and are added to :data:`cli` here. Expected
errors (:class:`~shoal.errors.ShoalError`, bad files) print one clear line and exit 1; anything
else shows a traceback, because it is a bug.
"""

from __future__ import annotations

import sys

import click

from shoal._version import __version__
from shoal.cli.dpf_cmd import dpf
from shoal.cli.job_cmd import job
from shoal.cli.mmt_cmd import mmt
from shoal.cli.plugins_cmd import plugins
from shoal.cli.pool_cmd import pool
from shoal.cli.run_cmd import run
from shoal.cli.stage_cmd import stage
from shoal.errors import ShoalError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="shoal")
def cli() -> None:
    """shoal: multi-node ML jobs, distributed partition functions and trainers on Ray.

    The workspace (stages, compute pools, job records) lives in $SHOAL_HOME.
    """


cli.add_command(plugins)
cli.add_command(stage)
cli.add_command(pool)
cli.add_command(job)
cli.add_command(dpf)
cli.add_command(mmt)
cli.add_command(run)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``shoal`` script."""
    try:
        cli.main(args=argv, prog_name="shoal", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (ShoalError, FileNotFoundError, NotADirectoryError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
