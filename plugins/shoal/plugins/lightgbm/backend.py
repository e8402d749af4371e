"""LightGBM's estimator backend: data-parallel training with the machine list set by the core.

* ``start`` (driver): the machine list ``address:port,...`` from the workers' slots (each worker
  reserved a free port on its node; several workers on one node get distinct ports).
* ``train`` (worker): a ``lightgbm.Dataset`` of this rank's shard only, binned with cuts every
  rank computes alike from a sample of all ranks' rows (:mod:`shoal.plugins.lightgbm.bins`),
  trained with ``tree_learner="data"``, ``pre_partition=True``, ``num_machines`` and this
  worker's ``local_listen_port``; LightGBM's network syncs the histograms. A rank with few threads
  builds its histograms row-wise unless the user chose (:func:`histogram_layout`). Rank 0 returns the booster
  (its network freed) and the evaluation history. Each finished round is a sign of progress
  (:func:`shoal.train.progress.report_progress`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shoal.plugins.lightgbm.bins import pick_rows, reference_from, sample_plan, shared_reference
from shoal.train.backend import TrainTask
from shoal.train.progress import report_progress
from shoal.train.ranks import RankInfo, WorkerSlot
from shoal.train.tabular import TabularBackend

NETWORK_TIMEOUT_MIN = 10
#: up to this many threads a rank builds histograms row-wise, as LightGBM's docs recommend
ROW_WISE_MAX_THREADS = 16


def histogram_layout(params: dict[str, Any], threads: int) -> dict[str, Any]:
    """Worker: ``{"force_row_wise": True}`` for a data-parallel rank with at most
    :data:`ROW_WISE_MAX_THREADS` threads, unless ``params`` chose a layout; else ``{}``.

    LightGBM picks row- or column-wise histograms by timing both on the rank's own shard; with one
    thread per rank in data-parallel mode it picks column-wise, which on ``bench/train_gbdt.py``'s
    data made two plain processes take 23-25 s against 17-21 s row-wise, for the same model
    (docs/training.md). LightGBM's docs recommend row-wise when ``num_threads`` is small."""
    if params.get("force_row_wise") or params.get("force_col_wise") or threads > ROW_WISE_MAX_THREADS:
        return {}
    return {"force_row_wise": True}


class LightGBMBackend(TabularBackend):
    default_objective = "regression"
    worker_modules = ("lightgbm",)
    worker_imports_hidden = ("sklearn",)  # 0.9 s of the import; training uses none of it

    def start(self, slots: Sequence[WorkerSlot]) -> dict[str, Any]:
        machines = ",".join(f"{slot.address}:{slot.ports[0]}" for slot in sorted(slots, key=lambda s: s.rank))
        return {"machines": machines, "num_machines": len(slots)}

    def train(self, rank: RankInfo, task: TrainTask, setup: Any) -> Any:
        import lightgbm

        params: dict[str, Any] = {
            "objective": self.objective,
            "num_threads": max(int(rank.cpus), 1),
            "verbosity": -1,
            **({"device_type": "gpu"} if rank.gpus > 0 else {}),
            **self.params,
        }
        if setup["num_machines"] > 1:
            params.update(
                tree_learner=params.get("tree_learner", "data"),
                num_machines=setup["num_machines"],
                machines=setup["machines"],
                local_listen_port=rank.ports[0],
                time_out=NETWORK_TIMEOUT_MIN,
                pre_partition=True,
            )
            params.update(histogram_layout(params, int(params["num_threads"])))
        from shoal.train.tabular_data import read_matrix

        input_cols, label_col = self.columns(task)  # reads the shard's schema: once
        columns = (input_cols, label_col)
        train_set = self._train_set(rank, task, params, columns, distributed=setup["num_machines"] > 1)
        evaluation = None
        if "eval" in task.shards:
            evaluation = read_matrix(task.shards["eval"].get_shard(), input_cols, label_col)
        valid_sets, valid_names = [train_set], ["train"]
        if evaluation is not None:
            valid_sets.append(lightgbm.Dataset(evaluation[0], label=evaluation[1], reference=train_set))
            valid_names.append("eval")
        history: dict[str, Any] = {}
        callbacks = [lightgbm.record_evaluation(history), *self.callbacks, _round_progress]
        verbose = task.options.get("verbose_eval")
        if verbose and rank.rank == 0:
            callbacks.append(lightgbm.log_evaluation(period=1 if verbose is True else int(verbose)))
        booster = lightgbm.train(
            params,
            train_set,
            num_boost_round=self.num_boost_round,
            valid_sets=valid_sets,
            valid_names=valid_names,
            callbacks=callbacks,
        )
        if setup["num_machines"] > 1:
            booster.free_network()
        history = {
            name: {metric: list(values) for metric, values in metrics.items()}
            for name, metrics in history.items()
        }
        return (booster, history) if rank.rank == 0 else None

    def _train_set(
        self,
        rank: RankInfo,
        task: TrainTask,
        params: dict[str, Any],
        columns: tuple[list[str], str],
        *,
        distributed: bool,
    ) -> Any:
        """Worker: this rank's constructed training ``Dataset``.

        Distributed, from a shard that can count its rows: one pass reads the labels and this
        rank's part of the shared bin sample, then LightGBM bins the rows as a second pass streams
        them (:class:`~shoal.plugins.lightgbm.rows.ShardRows`), so the rank never holds its shard
        as floats. Otherwise one float32 matrix, dropped once LightGBM has binned it."""
        import lightgbm

        from shoal.train.tabular_data import read_matrix, read_picked_rows

        input_cols, label_col = columns
        shard = task.shards["train"].get_shard()
        rows = shard.source.num_rows() if distributed else None
        if rows is not None:
            from shoal.plugins.lightgbm.rows import ShardRows

            count, seed = sample_plan(rows, params, rank.rank)
            sample, label = read_picked_rows(shard, input_cols, label_col, pick_rows(rows, count, seed))
            reference = reference_from(sample, params, input_cols)
            del sample
            data: Any = ShardRows(shard, input_cols, rows)
        else:
            data, label = read_matrix(shard, input_cols, label_col)
            reference = shared_reference(data, params, input_cols, rank.rank) if distributed else None
        # binned once constructed: LightGBM lets go of the float rows (free_raw_data), and so do we
        return lightgbm.Dataset(
            data, label=label, feature_name=input_cols, params=params, reference=reference
        ).construct()


def _round_progress(env: Any) -> None:
    """Worker: a LightGBM callback that reports every finished boosting round as progress."""
    report_progress(f"boosting round {env.iteration + 1}")
