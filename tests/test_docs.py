"""Every example in README.md and docs/ runs (tests/doc_blocks.py): each page's ``python`` blocks
and ``shoal``/``python`` command lines, in reading order, in one fresh interpreter with its own
workspace, after a setup that provides what the page takes as given (the reader's data, files
and functions: a ``sales`` frame, a ``train.py``). A page that needs a compute pool gets one
from its setup, dropped at the end. A block the page marks ``Not run by the tests: <why>`` is
skipped, and the reason must be there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from doc_blocks import blocks, pages, runner_source

#: what the reader of a page already has: their data, files and functions (never shoal's calls)
SALES = """
import numpy as np, pandas as pd
rng = np.random.default_rng(7)
stores = [f"S{i:02d}" for i in range(8)]
sales = pd.DataFrame({
    "STORE": np.repeat(stores, 30),
    "REGION": np.repeat(["north", "south", "east", "west"], 60),
    "PRICE": rng.uniform(1, 5, 240).round(2),
    "PROMO": rng.integers(0, 2, 240),
})
sales["UNITS"] = (100 - 12 * sales["PRICE"] + 5 * sales["PROMO"] + rng.normal(0, 2, 240)).round(1)
new_sales = sales.drop(columns=["UNITS"]).copy()
"""

POOL = """
import shoal
shoal.create_compute_pool("DOCS", min_nodes=2, max_nodes=2)
os.environ["SHOAL_COMPUTE_POOL"] = "DOCS"
"""

FEATURES_STAGE = """
import shoal
features = shoal.create_stage("features", exist_ok=True)
for store, part in sales.groupby("STORE"):
    path = f"{store}.parquet"
    part.to_parquet(path)
    features.put(path, "train")
"""

WAREHOUSE_SALES = """
from shoal.data.warehouse import connect_warehouse
with connect_warehouse() as con:
    con.register("sales_frame", sales)
    con.execute("CREATE OR REPLACE TABLE sales AS SELECT * FROM sales_frame")
"""

SETUP: dict[str, str] = {
    "docs/cli.md": SALES
    + WAREHOUSE_SALES
    + """
import pathlib
sales.to_csv("sales.csv", index=False)
pathlib.Path("hello.py").write_text("import sys\\nprint('hello', *sys.argv[1:])\\n")
pathlib.Path("totals.py").write_text(
    "import json, pathlib\\n"
    "def write_json(value, path):\\n"
    "    pathlib.Path(path).write_text(json.dumps(value))\\n"
    "def total(data, context):\\n"
    "    units = float(data.to_pandas()['UNITS'].sum())\\n"
    "    print(context.partition_id, units)\\n"
    "    context.upload_to_stage(units, 'total.json', write_function=write_json)\\n"
)
""",
    "docs/data.md": SALES
    + FEATURES_STAGE
    + WAREHOUSE_SALES
    + """
df = sales
import torch
os.makedirs("sales", exist_ok=True)
sales.rename(columns=str.lower).to_parquet("sales/part-0.parquet")
""",
    "docs/dpf.md": SALES
    + POOL
    + FEATURES_STAGE
    + """
def fit(frame):
    return {"mean_units": float(frame["UNITS"].mean())}
import pathlib
pathlib.Path("store_models.py").write_text(
    "def fit(frame):\\n    return {'mean_units': float(frame['UNITS'].mean())}\\n"
    "def train(data, context):\\n    frame = data.to_pandas()\\n"
    "    context.upload_to_stage(fit(frame), 'model.pkl')\\n"
    "    print(f'{context.partition_id}: {len(frame)} rows')\\n"
)
"""
    + WAREHOUSE_SALES,
    "docs/jobs.md": """
import os, pathlib, shoal
pathlib.Path("train.py").write_text("import sys\\nprint('training with', sys.argv[1:])\\n")
pathlib.Path("project").mkdir()
pathlib.Path("project/main.py").write_text("print('project main')\\n")
shoal.create_stage("CODE", exist_ok=True).put("project", "project")
""",
    "docs/mmt.md": SALES + POOL,
    "docs/training.md": SALES
    + POOL
    + """
holdout = sales.sample(40, random_state=1)
X = sales[["PRICE", "PROMO"]].to_numpy()
""",
    "docs/tune.md": POOL
    + """
import numpy as np, pandas as pd
rng = np.random.default_rng(3)
frame = pd.DataFrame(rng.random((600, 2)), columns=["A", "B"])
frame["Y"] = np.sin(6 * frame["A"]) + frame["B"]
train_df, test_df = frame[:450], frame[450:].reset_index(drop=True)
""",
    "docs/snowflake-compat.md": """
import pathlib
pathlib.Path("train.py").write_text(
    "import argparse\\nfrom snowflake.ml.jobs import remote\\n"
    "print('epochs', argparse.ArgumentParser().parse_known_args()[0])\\n"
)
""",
    "docs/stages.md": """
import pathlib
pathlib.Path("out/sub").mkdir(parents=True)
pathlib.Path("out/model.json").write_text("{}")
pathlib.Path("out/sub/meta.json").write_text("{}")
""",
}

#: pages whose examples start a Ray cluster (the slow tier)
WITH_RAY = {
    "README.md",
    "docs/cli.md",
    "docs/data.md",
    "docs/dpf.md",
    "docs/jobs.md",
    "docs/mmt.md",
    "docs/pools.md",
    "docs/training.md",
    "docs/tune.md",
}

TEARDOWN = """
import shoal
for info in shoal.list_compute_pools():
    shoal.drop_compute_pool(info["name"])
from shoal.data.snowpark_service import stop_service
stop_service()
"""

RUN_PAGES = [page for page in pages() if any(not b.not_run for b in blocks(page))]


def test_every_block_that_is_not_run_says_why() -> None:
    for page in pages():
        for block in blocks(page):
            if block.not_run is not None:
                assert len(block.not_run) > 10, f"{block.where}: say why the block is not run"


@pytest.mark.parametrize(
    "page",
    [pytest.param(p, marks=[pytest.mark.slow, pytest.mark.ray]) if p in WITH_RAY else p for p in RUN_PAGES],
)
def test_the_page_s_examples_run(page: str, tmp_path: Path) -> None:
    page_blocks = blocks(page)
    script = runner_source(page_blocks, "import os\n" + textwrap.dedent(SETUP.get(page, "")), REPO_ROOT)
    script = script.replace("print('DOC PAGE DONE', flush=True)\n", "")
    script = "try:\n" + textwrap.indent(script, "    ") + "\nfinally:\n" + textwrap.indent(TEARDOWN, "    ")
    script += "\nprint('DOC PAGE DONE', flush=True)\n"
    env = {k: v for k, v in os.environ.items() if k not in ("SHOAL_COMPUTE_POOL", "SHOAL_DEBUG")}
    env["SHOAL_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900
    )
    assert done.returncode == 0, f"{page}: {done.stderr[-6000:]}"
    assert "DOC PAGE DONE" in done.stdout
