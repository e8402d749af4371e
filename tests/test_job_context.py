"""``JobContext``: am I in a job, am I its payload, which nodes did it get (the environment part,
without Ray; the nodes themselves are checked on real pools by test_dpf.py and test_training.py)."""

from __future__ import annotations

import pytest

from shoal.jobs.context import JobContext, JobNode, instance_count, job_node_ids


@pytest.fixture
def outside(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("SHOAL_JOB_ID", "SHOAL_JOB_NODE_IDS", "SHOAL_INSTANCE_ID", "SHOAL_INSTANCE_COUNT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_outside_a_job_nothing_says_job(outside: pytest.MonkeyPatch) -> None:
    context = JobContext.current()
    assert context == JobContext(job_id=None, node_ids=(), instance=None)
    assert not context.in_job
    assert not context.in_payload
    assert instance_count() == 1
    assert job_node_ids() == []


def test_the_payload_process_is_in_the_job_and_its_payload(outside: pytest.MonkeyPatch) -> None:
    outside.setenv("SHOAL_JOB_ID", "train_1a2b")
    outside.setenv("SHOAL_JOB_NODE_IDS", "head,n1,n2")
    outside.setenv("SHOAL_INSTANCE_ID", "0")
    context = JobContext.current()
    assert context.job_id == "train_1a2b"
    assert context.node_ids == ("head", "n1", "n2")
    assert context.in_job, "training uses the job's nodes"
    assert context.in_payload, "a DPF run's scheduler may live here"


def test_a_ray_worker_of_the_job_is_in_the_job_but_not_its_payload(outside: pytest.MonkeyPatch) -> None:
    outside.setenv("SHOAL_JOB_ID", "train_1a2b")
    outside.setenv("SHOAL_JOB_NODE_IDS", "head,n1")
    context = JobContext.current()
    assert context.in_job
    assert not context.in_payload


def test_a_job_id_without_nodes_is_not_a_job_to_train_in(outside: pytest.MonkeyPatch) -> None:
    outside.setenv("SHOAL_JOB_ID", "odd")
    outside.setenv("SHOAL_JOB_NODE_IDS", ",,")
    assert JobContext.current().node_ids == ()
    assert not JobContext.current().in_job


def test_a_job_node_defaults_to_no_gpu_on_loopback() -> None:
    assert JobNode("n1", 4) == JobNode(node_id="n1", cpus=4.0, gpus=0.0, address="127.0.0.1")
