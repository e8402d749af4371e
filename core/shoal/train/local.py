"""Training with an estimator plugin in the calling process, as a world of one rank.

The same :class:`~shoal.train.EstimatorBackend` contract as distributed training, called in
order on one rank: ``start`` with this process's slot, ``worker_context``, ``train`` on all the
data, ``collect``, ``shutdown``. This is how many-model training fits one model per partition
with any estimator plugin (``ManyModelTraining.from_estimator``) without a worker group per
partition.

Runs wherever it is called: a DPF partition worker, or any process.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any

from shoal.ports import free_ports
from shoal.train.backend import EstimatorBackend, TrainTask, build_backend
from shoal.train.ranks import WorkerSlot, rank_infos, set_current


def build(
    estimator: str, *, label_col: str | None, input_cols: list[str] | None, **options: Any
) -> EstimatorBackend:
    """The plugin's backend for one-rank training. The columns go to the factory (backends that
    carry them, such as a third party's) and, at train time, into the task's options (the
    tabular backends read them there)."""
    columns: dict[str, Any] = {"label_col": label_col}
    if input_cols is not None:
        columns["input_cols"] = list(input_cols)
    _, backend = build_backend(estimator, **columns, **options)
    return backend


def fit_local(
    backend: EstimatorBackend,
    data: Any,
    *,
    label_col: str | None = None,
    input_cols: list[str] | None = None,
    cpus: float | None = None,
) -> Any:
    """Train ``backend`` on ``data`` (anything a DataConnector takes) in this process; return the
    model (``backend.model_of(backend.collect([result]))``). ``cpus`` defaults to this
    process's CPU budget (``OMP_NUM_THREADS`` as Ray sets it for a task, else the machine's)."""
    from shoal.data.sharded import as_sharded

    budget = float(cpus if cpus is not None else _cpu_budget())
    address = "127.0.0.1"
    ports, sockets = free_ports(backend.ports_per_worker, address)
    slot = WorkerSlot(
        rank=0, local_rank=0, node_rank=0, node_id="local", address=address, pid=os.getpid(),
        ports=tuple(ports), log_path="",
    )  # fmt: skip
    (rank,) = rank_infos([slot], budget, 0.0)
    view = as_sharded(data).rank_views(1)[0]
    options: dict[str, Any] = {"label_col": label_col, "input_cols": list(input_cols) if input_cols else None}
    for sock in sockets:  # the framework binds them now
        sock.close()
    setup = backend.start([slot])
    setup = backend.start_on_rank0([slot], setup)  # this process is rank 0
    try:
        set_current(rank)
        with ExitStack() as stack:
            stack.enter_context(backend.worker_context(rank, setup))
            result = backend.train(rank, TrainTask(shards={"train": view}, options=options), setup)
        return backend.model_of(backend.collect([result]))
    finally:
        set_current(None)
        backend.shutdown()


def _cpu_budget() -> float:
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit() and int(threads) > 0:
        return float(threads)
    return float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
