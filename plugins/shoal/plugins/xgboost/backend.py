"""XGBoost's estimator backend: a RabitTracker on rank 0's worker, a communicator on each worker.

* ``start_on_rank0`` (rank 0's worker, before any rank trains): start
  ``xgboost.tracker.RabitTracker`` for the world size on rank 0's node address, as Ray Train
  does; its ``worker_args()`` go to every worker. The job's driver never imports xgboost: that
  import (1.2 s of CPU) used to compete with the start of the rank processes on the same cores.
* ``worker_context`` (worker): ``xgboost.collective.CommunicatorContext`` with this rank as its
  task id (the tracker sorts workers by task id, so xgboost's ranks are shoal's ranks). On rank
  0, leaving it waits briefly for the tracker, then frees it.
* ``train`` (worker): a ``QuantileDMatrix`` of this rank's shard only, built from its Arrow
  batches through a data iterator (:mod:`shoal.plugins.xgboost.data`; paged to disk with
  ``external_memory``), ``xgboost.train`` with ``tree_method="hist"``; quantile sketches and
  histograms are all-reduced by xgboost's collective, so every worker holds the same model.
  Rank 0 returns the booster and the evaluation history. Each finished round is a sign of
  progress (:func:`shoal.train.progress.report_progress`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from shoal.train.backend import TrainTask
from shoal.train.progress import report_progress
from shoal.train.ranks import RankInfo, WorkerSlot
from shoal.train.tabular import TabularBackend

COLLECTIVE_TIMEOUT_S = 600


class XGBoostBackend(TabularBackend):
    default_objective = "reg:squarederror"
    worker_modules = ("xgboost",)
    worker_imports_hidden = ("sklearn",)  # 0.9 s of the import; training uses none of it
    _tracker: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tracker"] = None  # the tracker stays in rank 0's worker
        return state

    def start_on_rank0(self, slots: Sequence[WorkerSlot], setup: Any) -> dict[str, Any]:
        from xgboost.tracker import RabitTracker

        self._tracker = RabitTracker(
            n_workers=len(slots), host_ip=slots[0].address, sortby="task", timeout=COLLECTIVE_TIMEOUT_S
        )
        self._tracker.start()
        return {**self._tracker.worker_args(), "dmlc_timeout": COLLECTIVE_TIMEOUT_S}

    @contextlib.contextmanager
    def worker_context(self, rank: RankInfo, setup: Any) -> Iterator[None]:
        from xgboost.collective import CommunicatorContext

        finished = False
        try:
            with CommunicatorContext(**setup, dmlc_task_id=f"{rank.rank:06d}"):
                yield
            finished = True
        finally:
            self._free_tracker(wait=finished)

    def __init__(self, *, external_memory: bool | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.external_memory = external_memory

    def _cache_dir(self, rank: RankInfo, task: TrainTask, input_cols: list[str]) -> str | None:
        """Where this rank pages its matrix (``ExtMemQuantileDMatrix``), or None to keep it in
        memory: ``external_memory=True``, or ``None`` and a shard whose float32 features would
        take more than half of the memory this rank may use on its node."""
        if self.external_memory is False:
            return None
        if self.external_memory is None:
            import psutil

            rows = task.shards["train"].get_shard().source.num_rows() or 0
            share = psutil.virtual_memory().available / max(rank.local_world_size, 1)
            if rows * len(input_cols) * 4 <= share / 2:
                return None
        scratch = os.environ.get("SHOAL_TRAIN_DIR") or tempfile.gettempdir()
        return os.path.join(scratch, f"xgb-cache-rank{rank.rank}")

    def train(self, rank: RankInfo, task: TrainTask, setup: Any) -> Any:
        import xgboost

        from shoal.plugins.xgboost.data import quantile_matrix

        input_cols, label_col = self.columns(task)
        params = {
            "objective": self.objective,
            "tree_method": "hist",
            "nthread": max(int(rank.cpus), 1),
            **({"device": "cuda"} if rank.gpus > 0 else {}),
            **self.params,
        }
        cache = self._cache_dir(rank, task, input_cols)
        shard = task.shards["train"].get_shard()
        dtrain = quantile_matrix(shard, input_cols, label_col, params, external_memory_dir=cache)
        evals = [(dtrain, "train")]
        if "eval" in task.shards:
            evals.append(
                (
                    quantile_matrix(
                        task.shards["eval"].get_shard(),
                        input_cols,
                        label_col,
                        params,
                        ref=dtrain,
                        external_memory_dir=f"{cache}-eval" if cache else None,
                    ),
                    "eval",
                )
            )
        if cache:
            print(f"[shoal] xgboost rank {rank.rank}: external memory, pages in {cache}", flush=True)
        history: dict[str, Any] = {}
        verbose = task.options.get("verbose_eval")
        booster = xgboost.train(
            params,
            dtrain,
            num_boost_round=self.num_boost_round,
            evals=evals,
            evals_result=history,
            verbose_eval=bool(verbose) if verbose is not None and rank.rank == 0 else False,
            callbacks=[*self.callbacks, _round_progress()],
        )
        return (booster, history) if rank.rank == 0 else None

    def _free_tracker(self, *, wait: bool) -> None:
        """Rank 0 (where :meth:`start_on_rank0` ran): stop the tracker. After a clean run the
        workers have all left, so it ends at once; ``wait`` bounds that wait at 15 s. After a
        failure it is left to end with the worker's process (peers may still be connected)."""
        tracker, self._tracker = self._tracker, None
        if tracker is None:
            return

        def finish() -> None:
            with contextlib.suppress(Exception):
                tracker.wait_for(timeout=10)
            with contextlib.suppress(Exception):
                tracker.free()

        thread = threading.Thread(target=finish, name="xgboost-tracker-free", daemon=True)
        thread.start()
        if wait:
            thread.join(timeout=15)


def _round_progress() -> Any:
    """Worker: an xgboost callback that reports every finished boosting round as progress."""
    import xgboost

    class RoundProgress(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            report_progress(f"boosting round {epoch + 1}")
            return False

    return RoundProgress()
