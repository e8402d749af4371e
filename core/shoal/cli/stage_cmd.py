"""``shoal stage ...``: create, list, fill, read and empty stages from the shell.

Locations are written ``@stage/path`` (the ``@`` is optional). Runs on the driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from shoal import stages
from shoal.cli.output import emit_json, format_option, print_table, progress


@click.group()
def stage() -> None:
    """Manage stages (named places where files live)."""


@stage.command("create")
@click.argument("name")
@click.option("--url", default=None, help="Store the stage at this URL (file://, memory://, s3://...).")
@click.option("--exist-ok", is_flag=True, help="Do not fail if the stage exists with the same URL.")
@format_option
def create(name: str, url: str | None, exist_ok: bool, output_format: str) -> None:
    """Create stage NAME (a folder under $SHOAL_HOME unless --url is given)."""
    created = stages.create_stage(name, url=url, exist_ok=exist_ok)
    row = {"name": created.name, "url": created.url}
    if output_format == "json":
        emit_json(row)
    else:
        print_table(("name", "url"), [row])


@stage.command("ls")
@click.argument("location", required=False)
@click.option("--pattern", default="*", show_default=True, help="Glob on file names (or paths, with '/').")
@format_option
def ls(location: str | None, pattern: str, output_format: str) -> None:
    """List stages, or the files under LOCATION (@stage/path)."""
    if location is None:
        rows = [{"name": i.name, "url": i.url, "managed": i.managed} for i in stages.list_stages()]
        if output_format == "json":
            emit_json(rows)
        else:
            print_table(("name", "url", "managed"), rows, empty="no stages")
        return
    found, inner = stages.resolve_location(location)
    files = found.list(inner, pattern=pattern)
    if output_format == "json":
        emit_json(files)
    else:
        for path in files:  # one path per line, as ls does: ready for xargs
            click.echo(path)


def _print_paths(paths: list[str], output_format: str) -> None:
    """Paths one per line (ready for xargs), or a JSON list."""
    if output_format == "json":
        emit_json(paths)
    else:
        for path in paths:
            click.echo(path)


@stage.command("put")
@click.argument("sources", nargs=-1, required=True)
@click.argument("location")
@format_option
def put(sources: tuple[str, ...], location: str, output_format: str) -> None:
    """Upload local files, folders or globs SOURCES to LOCATION (@stage/dir); prints each file."""
    found, inner = stages.resolve_location(location)
    written = [f"@{found.name}/{path}" for source in sources for path in found.put(source, inner)]
    _print_paths(written, output_format)


@stage.command("get")
@click.argument("location")
@click.argument("local_dir", type=click.Path(file_okay=False, path_type=Path), default=".")
@format_option
def get(location: str, local_dir: Path, output_format: str) -> None:
    """Download the file or folder at LOCATION into LOCAL_DIR; prints each local file."""
    found, inner = stages.resolve_location(location)
    _print_paths(list(found.get(inner, str(local_dir))), output_format)


@stage.command("rm")
@click.argument("location")
@click.option("--missing-ok", is_flag=True, help="Do not fail if nothing is there.")
@format_option
def rm(location: str, missing_ok: bool, output_format: str) -> None:
    """Remove the file or folder at LOCATION."""
    found, inner = stages.resolve_location(location)
    removed = found.remove(inner, missing_ok=missing_ok)
    if output_format == "json":
        emit_json({"location": f"@{found.name}/{inner}", "removed_files": removed})
    else:
        click.echo(f"removed {removed} file(s)")


@stage.command("drop")
@click.argument("name")
@click.option("--missing-ok", is_flag=True, help="Do not fail if the stage does not exist.")
def drop(name: str, missing_ok: bool) -> None:
    """Drop stage NAME (a managed stage's files are deleted; external data is kept)."""
    stages.drop_stage(name, missing_ok=missing_ok)
    progress(f"dropped {name}")


@stage.command("gc")
@click.argument("location", required=False)
@click.option(
    "--older-than",
    "older_than_s",
    type=click.FloatRange(min=0),
    default=None,
    help="Leave temporary files younger than this many seconds (a live writer may own them). Default: 300.",
)
@click.option("--dry-run", is_flag=True, help="Only show what would be removed.")
@format_option
def gc(location: str | None, older_than_s: float | None, dry_run: bool, output_format: str) -> None:
    """Remove what killed writers left: .shoal-tmp-* files under LOCATION (@stage/path), or in
    every stage when LOCATION is not given. Prints each file removed, then a total (stderr)."""
    from shoal.stages.gc import DEFAULT_MIN_AGE_S, sweep_temp_files

    age = DEFAULT_MIN_AGE_S if older_than_s is None else older_than_s
    if location is None:
        places = [(stages.get_stage(info.name), "") for info in stages.list_stages()]
    else:
        places = [stages.resolve_location(location)]
    rows: list[dict[str, Any]] = [
        {"path": f"@{found.name}/{swept.path}", "bytes": swept.size, "age_s": round(swept.age_s)}
        for found, inner in places
        for swept in sweep_temp_files(found, inner, older_than_s=age, dry_run=dry_run)
    ]
    if output_format == "json":
        emit_json(rows)
    else:
        print_table(("path", "bytes", "age_s"), rows)
    verb = "would remove" if dry_run else "removed"
    progress(
        f"{verb} {len(rows)} temporary file(s), {sum(int(r['bytes']) for r in rows)} bytes "
        f"(left those younger than {age:.0f} s)"
    )
