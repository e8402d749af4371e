"""shoal quickstart: the main demo, run on the embedded defaults.

    bash .ci/dev demo

What it shows today (it grows with every part of shoal):

1. the plugin system: which plugins are installed and what they contribute;
2. a stage round trip: create a stage in $SHOAL_HOME, upload a folder, list it with a glob,
   write a file atomically, download everything back and check it byte for byte.

Runs on the driver (this process); nothing else needs to be set up.
"""

from __future__ import annotations

import filecmp
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

import shoal
from shoal.cli.plugins_cmd import plugin_table
from shoal.workspace import shoal_home

console = Console()


def show_plugins() -> None:
    table = Table(title="1. Installed plugins (shoal plugins list)")
    for column in ("plugin", "distribution", "hooks", "contributes"):
        table.add_column(column)
    for row in plugin_table():
        contributes = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in row["contributes"].items())
        table.add_row(
            row["name"], f"{row['distribution']} {row['version']}", ", ".join(row["hooks"]), contributes
        )
    console.print(table)


def make_sample_data(folder: Path) -> None:
    (folder / "region=north").mkdir(parents=True)
    (folder / "region=south").mkdir(parents=True)
    (folder / "region=north" / "sales.csv").write_text("store,units\n1,10\n2,12\n")
    (folder / "region=south" / "sales.csv").write_text("store,units\n3,7\n")
    (folder / "README.txt").write_text("sample sales data\n")


def stage_round_trip() -> None:
    console.rule("2. Stage round trip")
    stage = shoal.create_stage("quickstart", exist_ok=True)
    stage.remove("demo", missing_ok=True)  # the demo can be run again and again
    console.print(f"stage [bold]@{stage.name}[/] lives at {stage.url}")

    with tempfile.TemporaryDirectory() as tmp:
        source, back = Path(tmp) / "source", Path(tmp) / "back"
        make_sample_data(source)
        uploaded = stage.put(str(source), "demo/input")
        console.print(f"uploaded {len(uploaded)} files: {uploaded}")
        console.print(f"list(pattern='*.csv') -> {stage.list('demo', pattern='*.csv')}")

        with shoal.get_stage("@db.schema.QUICKSTART").open("demo/input/summary.txt", "w") as handle:
            handle.write("2 regions, 3 stores\n")  # appears under its name only when the block ends
        try:
            with stage.open("demo/input/summary.txt", "w") as handle:
                handle.write("half a file")
                raise RuntimeError("simulated crash during a write")
        except RuntimeError:
            pass
        console.print(
            f"after a crashed overwrite the file still reads: {stage.read_text('demo/input/summary.txt')!r}"
        )

        downloaded = stage.get("demo/input", str(back))
        same = all(
            filecmp.cmp(source / rel, back / rel, shallow=False)
            for rel in ("README.txt", "region=north/sales.csv", "region=south/sales.csv")
        )
        console.print(f"downloaded {len(downloaded)} files; identical to the originals: [bold]{same}[/]")
        if not same:
            raise SystemExit("round trip changed the data")

    try:
        stage.open("../outside.txt", "w")
    except shoal.StagePathError as exc:
        console.print(f"refused, as it should be: {exc}")


def main() -> None:
    console.print(f"[bold]shoal {shoal.__version__}[/] quickstart; workspace: {shoal_home()}")
    show_plugins()
    stage_round_trip()
    console.print("[green]quickstart finished[/]")


if __name__ == "__main__":
    main()
