"""The wire format (shoal.wire): every spec that crosses a process boundary round-trips through
it, also with fields it does not know; bad documents are refused saying what is wrong."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
from dataclasses import replace
from typing import Any

import msgspec
import pytest

import shoal
from shoal.dpf.definition import ManyModelSection, RunDefinition
from shoal.dpf.entities import ExecutionOptions
from shoal.dpf.specs import BatchSpec, PartitionInput, RunSpec, TaskOutcome, TaskSpec
from shoal.jobs.spec import JobIdentity, JobSpec, LaunchSpec
from shoal.jobs.status import JobStatus, JobStatusDocument
from shoal.plugin_manager import PluginManifest, PluginRecord
from shoal.plugins.local_pool_state import LocalNode, LocalPoolState
from shoal.pools.node_spec import NodeLaunchSpec, NodeStarted
from shoal.serde import SerdeRef
from shoal.train.ranks import RankInfo, WorkerInfo, WorkerSlot
from shoal.tune.records import RunRecord, TrialRecord
from shoal.wire import WIRE_VERSION, WireError, WireSpec, decode_list, encode_list

MANIFEST = PluginManifest(
    plugins=(PluginRecord("serdes", "shoal", "1.0", "builtin", "shoal.plugins.serdes"),),
    blocked=("torch",),
    compat=("snowflake",),
)
IDENTITY: dict[str, Any] = {
    "job_id": "train_ab12",
    "job_name": "train_ab12",
    "job_dir": "train_ab12",
    "stage_name": "RUNS",
    "stage_url": "file:///tmp/runs",
    "compute_pool": "POOL",
    "target_instances": 3,
    "min_instances": 2,
}
LAUNCH = LaunchSpec(
    **IDENTITY,
    kind="command",
    entrypoint=["python", "-m", "trainer"],
    args=["--rounds", "3"],
    worker_env={"SHOAL_INSTANCE": "0"},
    shared_filesystem=False,
    plugin_manifest=MANIFEST,
    pip_requirements=["xgboost"],
    user_env_names=["API_KEY"],
)
TASK = TaskSpec("east", 2, attempt=1, files=("@RUNS/east.parquet",), record_batches=(0, 4), folder="e/east")

SERDE = SerdeRef("model.pkl", name="pickle")
HEAD_NODE = LocalNode(0, 4240, "n1", "127.0.0.1:6379", "/tmp/s/logs", "/tmp/t", (4242,), started_at=2.0)

#: one instance of every cross-process spec
EXAMPLES: list[WireSpec] = [
    MANIFEST,
    MANIFEST.plugins[0],
    LAUNCH,
    JobSpec(
        **IDENTITY,
        created_time=1.5,
        node_resource="shoal_pool_POOL",
        instances_timeout=60.0,
        env={"RAY_ADDRESS": "127.0.0.1:1"},
        launch=LAUNCH,
    ),
    RunSpec(
        "r1",
        "RUNS",
        "file:///tmp/runs",
        "sql",
        ExecutionOptions(max_retries=2),
        MANIFEST.to_json(),
        job_id="j1",
    ),
    PartitionInput("east", 2, files=("@RUNS/east.parquet",), rows=10, record_batches=(0, 4)),
    TASK,
    BatchSpec(7, (TASK, TaskSpec("west", 3, attempt=0))),
    TaskOutcome(2, 1, "FAILED", "boom", 1.0, 2.0, node_id="n1", retryable=False),
    RunRecord("t1", "RUNNING", "rmse", "min", "grid", 4, None, {"CPU": 1.0}, {"eta": "[0.1, 0.3]"}, 3.0),
    TrialRecord("t1_00001", 1, "DONE", {"eta": 0.1}, 3.0, metrics={"rmse": 0.5}, reports=2),
    WorkerInfo("n1", "10.0.0.2", 4242, (20001, 20002), "/tmp/rank0.log"),
    WorkerSlot(0, 0, 0, "n1", "10.0.0.2", 4242, (20001,), "/tmp/rank0.log"),
    RankInfo(1, 0, 2, 1, 1, 2, "n2", "10.0.0.3", "10.0.0.2", 20001, (20003,), 1.0, 0.0),
    SERDE,
    ManyModelSection("inference", SERDE, training_run_id="train_v1"),
    RunDefinition(
        "r1_retry1",
        "stage",
        2.5,
        "POOL",
        "score",
        3,
        RunSpec("r1_retry1", "RUNS", "file:///tmp/runs", "stage", ExecutionOptions(), "{}"),
        job_id="j2",
        stage_location="@RUNS/in/",
        file_pattern="*.parquet",
        retry_of="r1",
        many_model=ManyModelSection("training", SERDE),
    ),
    JobStatusDocument(
        JobStatus.RUNNING,
        "",
        updated=3.0,
        created_time=1.5,
        started_time=2.5,
        compute_pool="POOL",
        target_instances=2,
        min_instances=1,
        payload_kind="file",
        entrypoint="train.py",
        args=("--epochs", "3"),
        env_names=("API_KEY",),
        instances=2,
        node_ids=("n1", "n2"),
        warnings=("finishing the instances' logs failed",),
    ),
    NodeStarted("127.0.0.1:6379", "n1", "/tmp/s", "/tmp/s/logs", "/tmp/t", {"raylet": [4242]}, 4240, 1.5),
    HEAD_NODE,
    LocalPoolState(
        "POOL-ab12",
        {"0": HEAD_NODE},
        gcs_address="127.0.0.1:6379",
        janitor_sid=4300,
    ),
    NodeLaunchSpec(
        head=False,
        temp_dir="/tmp/shoal-0/p/n1",
        num_cpus=2,
        num_gpus=0,
        memory=2**30,
        object_store_memory=200 * 2**20,
        node_name="POOL-1",
        resources={"shoal_pool_POOL": 1.0},
        labels={"shoal-node": "1"},
        gcs_address="127.0.0.1:6379",
    ),
]


def with_unknown_fields(value: Any) -> Any:
    """``value`` as JSON builtins, with a field no spec has added to each spec in it, at every
    depth (maps that are a spec's values, such as ``RunSpec.options``, are left as they are)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        document = {f.name: with_unknown_fields(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {**document, "added_by_a_newer_shoal": [1]}
    if isinstance(value, (list, tuple)):
        return [with_unknown_fields(v) for v in value]
    return msgspec.to_builtins(value)


def every_wire_spec() -> set[type]:
    """Every WireSpec subclass in shoal's modules (importing them all, but the runtime's)."""
    for module in pkgutil.walk_packages(shoal.__path__, "shoal."):
        if module.name.startswith(
            ("shoal.runtime", "shoal.compat", "shoal.ui", "shoal.plugins", "shoal.__main__")
        ):
            continue
        importlib.import_module(module.name)

    def below(cls: type) -> set[type]:
        return {sub for direct in cls.__subclasses__() for sub in {direct, *below(direct)}}

    return {cls for cls in below(WireSpec) if cls.__module__.startswith("shoal.")}


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda spec: type(spec).__name__)
def test_a_spec_round_trips_also_with_fields_it_does_not_know(spec: WireSpec) -> None:
    text = spec.to_json()
    assert json.loads(text)["wire"] == WIRE_VERSION
    assert type(spec).from_json(text) == spec
    newer = json.dumps(with_unknown_fields(spec))
    assert type(spec).from_json(newer) == spec


#: specs that are only bases of others, never sent alone
BASES = {JobIdentity}


def test_every_cross_process_spec_has_an_example_here() -> None:
    missing = sorted(
        cls.__qualname__ for cls in every_wire_spec() - BASES - {type(spec) for spec in EXAMPLES}
    )
    assert missing == [], f"add an example of each to EXAMPLES: {missing}"


def test_a_nested_spec_comes_back_typed() -> None:
    job = JobSpec.from_json(EXAMPLES[3].to_json())
    assert isinstance(job.launch, LaunchSpec)
    assert isinstance(job.launch.plugin_manifest, PluginManifest)
    assert job.launch.plugin_manifest.plugins[0].source == "builtin"
    batch = BatchSpec.from_json(EXAMPLES[7].to_json())
    assert batch.tasks[0].files == ("@RUNS/east.parquet",), "tuples come back as tuples"
    assert batch.tasks[0].record_batches == (0, 4)
    run = RunSpec.from_json(EXAMPLES[4].to_json())
    assert run.execution_options == ExecutionOptions(max_retries=2)


def test_a_run_spec_written_with_options_as_a_map_reads_as_typed_options() -> None:
    """run.json of a run started before the options were typed: the same JSON object."""
    old = {**json.loads(EXAMPLES[4].to_json()), "options": {"max_retries": 4, "fail_fast": True}}
    assert RunSpec.from_dict(old).execution_options == ExecutionOptions(max_retries=4, fail_fast=True)


def test_a_list_of_specs_travels_as_one_array() -> None:
    first = WorkerSlot(0, 0, 0, "n1", "10.0.0.2", 4242, (20001,), "/tmp/rank0.log")
    slots = [first, replace(first, rank=1, pid=4343)]
    assert decode_list(WorkerSlot, encode_list(slots)) == slots
    with pytest.raises(WireError, match="a list of WorkerSlot must be a JSON array, not dict"):
        decode_list(WorkerSlot, "{}")


def test_a_wrongly_typed_field_is_refused_naming_it() -> None:
    data = json.loads(TASK.to_json())
    data["attempt"] = "first"
    with pytest.raises(WireError, match=r"not a valid TaskSpec: Expected `int`, got `str` - at `\$.attempt`"):
        TaskSpec.from_dict(data)
    with pytest.raises(WireError, match="a TaskSpec must be JSON"):
        TaskSpec.from_json("{not json")
    with pytest.raises(WireError, match="must be a JSON object, not list"):
        TaskSpec.from_json("[]")


def test_a_document_of_a_newer_wire_version_is_refused_saying_what_to_do() -> None:
    data = {**json.loads(TASK.to_json()), "wire": WIRE_VERSION + 1}
    with pytest.raises(WireError) as caught:
        TaskSpec.from_dict(data)
    message = str(caught.value)
    assert f"wire version {WIRE_VERSION + 1}" in message
    assert "install the same shoal version on the driver and the nodes" in message


def test_a_run_definition_written_before_it_was_typed_reads_back_typed() -> None:
    """run.json of a many-model inference run as shoal wrote it before RunDefinition: a plain
    object, no wire version, the many-model section a plain object too."""
    spec = json.loads(EXAMPLES[4].to_json())
    old = {
        "run_id": "r1",
        "mode": "sql",
        "created": 1765000000,
        "compute_pool": "POOL",
        "function": "score",
        "num_partitions": 2,
        "spec": spec,
        "partition_by": "region",
        "job_id": "dpf_r1_ab12",
        "many_model": {
            "kind": "inference",
            "training_run_id": "v1",
            "serde": {"filename": "model.json", "name": "xgboost", "pickled": None},
        },
    }
    definition = RunDefinition.from_dict(old)
    assert definition.many_model == ManyModelSection(
        "inference", SerdeRef("model.json", name="xgboost"), training_run_id="v1"
    )
    assert definition.created == 1765000000.0
    assert definition.spec == EXAMPLES[4]
    assert definition.details()["many_model"]["serde"]["name"] == "xgboost"
    with pytest.raises(WireError, match=r"\$.many_model.kind"):
        RunDefinition.from_dict({**old, "many_model": {**old["many_model"], "kind": "scoring"}})
