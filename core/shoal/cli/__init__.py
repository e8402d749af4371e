"""The ``shoal`` command line. Runs on the driver (the user's machine).

Sub-command groups live in their own modules, imported by :data:`cli` when one is used. Expected
errors (:class:`~shoal.errors.ShoalError`, bad files) print one clear line and exit 1; anything
else shows a traceback, because it is a bug.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from shoal._version import __version__
from shoal.errors import ShoalError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: Sub-command groups by name: the module that defines each and the group's name there. A
#: command imports only its own module (``shoal job ls`` does not load the plugin manager).
SUBCOMMANDS = {
    "plugins": ("shoal.cli.plugins_cmd", "plugins"),
    "stage": ("shoal.cli.stage_cmd", "stage"),
    "pool": ("shoal.cli.pool_cmd", "pool"),
    "job": ("shoal.cli.job_cmd", "job"),
    "dpf": ("shoal.cli.dpf_cmd", "dpf"),
    "mmt": ("shoal.cli.mmt_cmd", "mmt"),
    "run": ("shoal.cli.run_cmd", "run"),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported when used (click's documented pattern for
    lazily loaded sub-commands). Runs on the driver, in the ``shoal`` process."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *self.lazy]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = self.lazy[cmd_name]
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}.{attribute} is not a click command")
        return command


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="shoal")
def cli() -> None:
    """shoal: multi-node ML jobs, distributed partition functions and trainers on Ray.

    The workspace (stages, compute pools, job records) lives in $SHOAL_HOME.
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``shoal`` script."""
    try:
        cli.main(args=argv, prog_name="shoal", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # one line: what was wrong, and where the usage is
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        click.echo(f"Error: {exc.format_message()}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (ShoalError, FileNotFoundError, NotADirectoryError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
