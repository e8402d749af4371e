"""The example notebook (examples/notebook_quickstart.ipynb) executed by nbclient in real Jupyter
kernels of the project's venv: one with ipywidgets, and one in which ipywidgets cannot be
imported, as without the ``notebook`` extra. The outputs are read back: each object's HTML holds
its status and counts, every progress bar reached 100%, nothing warns about ipywidgets, and no
cell raised."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

NOTEBOOK = Path(__file__).parents[1] / "examples" / "notebook_quickstart.ipynb"

#: a kernel of this venv in which ``import ipywidgets`` fails as if it were not installed
WITHOUT_WIDGETS = """
from importlib.machinery import PathFinder

found_by_path = PathFinder.find_spec.__func__


def find_spec(cls, name, path=None, target=None):
    # ipywidgets is not installed here, as without shoal's notebook extra
    if name == "ipywidgets" or name.startswith("ipywidgets."):
        return None
    return found_by_path(cls, name, path, target)


PathFinder.find_spec = classmethod(find_spec)
from ipykernel import kernelapp

kernelapp.launch_new_instance()
"""


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two kernel specs of this venv (with and without ipywidgets), found through JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    (root / "no_widgets_kernel.py").write_text(WITHOUT_WIDGETS)
    specs = {
        "shoal-widgets": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "shoal-no-widgets": [sys.executable, str(root / "no_widgets_kernel.py"), "-f", "{connection_file}"],
    }
    for name, argv in specs.items():
        folder = root / "kernels" / name
        folder.mkdir(parents=True)
        (folder / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": name, "language": "python"})
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
        patch.delenv("SHOAL_DISPLAY", raising=False)
        yield root


def execute(kernel: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The example notebook after nbclient ran it in ``kernel``, in a workspace of its own (a
    cell that raises fails here; the notebook's pool is dropped whatever happened)."""
    import nbformat
    from nbclient import NotebookClient

    import shoal

    home = folder / kernel
    home.mkdir()
    monkeypatch.setenv("SHOAL_HOME", str(home))  # the kernel inherits it
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=kernel,
        timeout=600,
        store_widget_state=True,
        resources={"metadata": {"path": str(home)}},
    )
    try:
        client.execute()
    finally:
        if any(p["name"] == "NOTEBOOK" for p in shoal.list_compute_pools()):
            shoal.drop_compute_pool("NOTEBOOK")
    return notebook


def cell(notebook: Any, source: str) -> Any:
    """The code cell whose source ends with ``source``."""
    found = [c for c in notebook.cells if c.cell_type == "code" and c.source.rstrip().endswith(source)]
    assert len(found) == 1, f"one cell should end with {source!r}"
    return found[0]


def html_of(notebook: Any, source: str) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell(notebook, source).outputs)


def text_of(notebook: Any, source: str) -> str:
    outputs = cell(notebook, source).outputs
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)


def count_in(html: str, status: str) -> int:
    found = re.findall(rf'<span data-count="{status}">(\d+)</span>', html)
    assert found, f"no count of {status} in the HTML"
    return int(found[0])


def check_objects(notebook: Any) -> None:
    """What every kernel shows, whatever its bars: statuses, counts, values, logs."""
    pool = html_of(notebook, "pool")
    assert "compute pool NOTEBOOK" in pool
    assert 'data-status="ACTIVE"' in pool
    assert 'data-status="ACTIVE"' in html_of(notebook, "shoal.list_compute_pools()")
    job = html_of(notebook, "job")
    assert 'data-status="DONE"' in job
    assert "ML job total_of_squares" in job
    assert "332833500" in text_of(notebook, "job.result()")
    logs = html_of(notebook, "job.show_logs()")
    assert "<pre" in logs
    assert "adding 1000 squares" in logs
    run = html_of(notebook, "run")
    assert 'data-status="PARTIAL_FAILURE"' in run
    assert count_in(run, "DONE") == 5
    assert count_in(run, "FAILED") == 1
    assert "ValueError: store S3 has no usable prices" in run, "the failed partition's last error"
    details = html_of(notebook, "run.partition_details")
    assert "6 partitions" in details
    assert count_in(details, "DONE") == 5
    failed_logs = html_of(notebook, 'run.partition_details["S3"].show_logs()')
    assert "<pre" in failed_logs
    assert "ValueError: store S3 has no usable prices" in failed_logs
    models = html_of(notebook, "models")
    assert "many-model training run store_models" in models
    assert 'data-status="SUCCESS"' in models
    assert count_in(models, "DONE") == 5
    assert "'slope'" in text_of(notebook, 'models.get_model("S0")')
    jobs = html_of(notebook, "list_jobs(limit=10)")
    assert 'data-status="DONE"' in jobs
    assert "total_of_squares" in jobs
    for code in (c for c in notebook.cells if c.cell_type == "code"):
        for output in code.outputs:
            assert output.output_type != "error", f"cell {code.source!r} raised"
            text = output.get("text", "") + json.dumps(output.get("data", {}))
            assert "ipywidgets" not in text.lower() or "widget-view" in text, f"a warning: {text[:300]}"
            assert "Traceback" not in output.get("text", ""), f"cell {code.source!r} printed a traceback"


WAITS = ("pool", "job", "run", "models")


def test_the_notebook_runs_with_widget_bars(jupyter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = execute("shoal-widgets", jupyter, monkeypatch)
    check_objects(notebook)
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bars = [m["state"] for m in state.values() if m["model_name"] == "IntProgressModel"]
    assert len(bars) >= len(WAITS), f"a bar for each wait: {bars}"
    assert all(bar["value"] == bar["max"] for bar in bars), f"every bar reached 100%: {bars}"
    for source in WAITS:
        views = [
            o
            for o in cell(notebook, source).outputs
            if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
        ]
        assert views, f"the cell ending with {source!r} shows a widget bar"


def test_the_notebook_runs_with_text_bars_without_ipywidgets(
    jupyter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = execute("shoal-no-widgets", jupyter, monkeypatch)
    check_objects(notebook)
    assert (
        "widgets" not in notebook.metadata
        or not notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    )
    for source in WAITS:
        bar = text_of(notebook, source)
        assert re.search(r"\[#{30}\]\s+\d+/\d+\s+100%", bar), (
            f"the text bar of {source!r} reached 100%: {bar!r}"
        )
