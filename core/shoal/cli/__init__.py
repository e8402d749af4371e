"""The ``shoal`` command line. Runs on the driver (the user's machine).

Sub-command groups live in their own modules, imported by :data:`cli` when one is used.

Every error is one line on stderr, ``Error: <what was wrong and what to do>``, and an exit code:
2 for a usage error (the command line itself, or an argument's value: click's errors and
:class:`~shoal.errors.ConfigError`), 1 for a failure (anything else, a command whose work did not
succeed included), 130 when interrupted. An error that is not shoal's own (a bug) says so on the
same line. ``--debug`` or ``SHOAL_DEBUG=1`` shows the traceback instead. docs/cli.md.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

from shoal._version import __version__
from shoal.errors import ConfigError, ShoalError

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
    "status": ("shoal.cli.status_cmd", "status"),
    "snowpark": ("shoal.cli.status_cmd", "snowpark"),
    "ui": ("shoal.cli.ui_cmd", "ui"),
    "tune": ("shoal.cli.tune_cmd", "tune"),
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


#: exit codes (docs/cli.md)
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: errors a user can cause and fix, printed as their message alone
EXPECTED = (
    ShoalError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    TimeoutError,
)
_debug = {"on": False}


def debugging() -> bool:
    """Whether tracebacks are wanted (``--debug`` or ``SHOAL_DEBUG=1``)."""
    return _debug["on"] or os.environ.get("SHOAL_DEBUG", "").strip().lower() in {"1", "true", "yes"}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="shoal")
@click.option("--debug", is_flag=True, help="Show the traceback of an error (or set SHOAL_DEBUG=1).")
def cli(debug: bool) -> None:
    """shoal: multi-node ML jobs, distributed partition functions and trainers on Ray.

    The workspace (stages, compute pools, job records) lives in $SHOAL_HOME. Data goes to
    stdout (--format table|json), progress and errors to stderr; exit code 0 on success, 1 on
    failure, 2 on a usage error (docs/cli.md).
    """
    _debug["on"] = _debug["on"] or debug


class _StderrHandler(logging.Handler):
    """Writes the ``shoal`` logger's records to the stderr in use at the time (click's test
    runner swaps it per call), as ``shoal: <message>``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(f"shoal: {self.format(record)}", err=True)
        except Exception:
            self.handleError(record)


def log_to_stderr() -> None:
    """The command line shows the library's log (submission, nodes ready, retries, the DEFAULT
    pool's creation) on stderr, from INFO up; once per process."""
    logger = logging.getLogger("shoal")
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        logger.addHandler(_StderrHandler())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def one_line(text: str) -> str:
    """``text`` on one line: its lines joined, blank ones dropped."""
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def error_line(exc: BaseException) -> tuple[str, int]:
    """What to print for ``exc`` (one line, without ``Error: ``) and the exit code."""
    if isinstance(exc, click.UsageError):
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        return one_line(exc.format_message()) + where, exc.exit_code
    if isinstance(exc, click.ClickException):
        return one_line(exc.format_message()), exc.exit_code
    code = EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILURE
    if isinstance(exc, EXPECTED):
        return one_line(str(exc)) or type(exc).__name__, code
    return (
        f"{type(exc).__name__}: {one_line(str(exc))} (not an error shoal expected: run again with --debug "
        "or SHOAL_DEBUG=1 for the traceback, and report it)",
        EXIT_FAILURE,
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``shoal`` script."""
    _debug["on"] = False
    log_to_stderr()  # the script only: a program that calls ``cli`` keeps its own logging
    try:
        cli.main(args=argv, prog_name="shoal", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if debugging():
            raise
        line, code = error_line(exc)
        click.echo(f"Error: {line}", err=True)
        sys.exit(code)
