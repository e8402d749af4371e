"""``get_context()``: what a ``train_func`` knows about its place in the distributed run.

Runs on the training workers, inside ``train_func``.
"""

from __future__ import annotations

from typing import Any

from shoal.train.progress import report_progress
from shoal.train.ranks import RankInfo

GPU_BACKEND = "nccl"
CPU_BACKEND = "gloo"


class MetricsReporter:
    """``log_metrics({"loss": 0.1})``; the run's result keeps what rank 0 reported."""

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        if not isinstance(metrics, dict):
            raise TypeError(f"log_metrics takes a dict of metric name -> value, got {type(metrics).__name__}")
        self.history.append(dict(metrics))
        report_progress("metrics reported")


class ArtifactManager:
    """Saves files next to the model (in the worker's model folder), from ``train_func``."""

    def __init__(self, model_dir: str) -> None:
        self.model_dir = model_dir

    def upload(self, local_path: str, name: str | None = None) -> str:
        """Copy ``local_path`` into the model folder as ``name`` (default: its own name); return
        where it is now."""
        import os
        import shutil

        target = os.path.join(self.model_dir, name or os.path.basename(local_path))
        shutil.copyfile(local_path, target)
        return target


class Context:
    """The reference product's training context (names and return types kept)."""

    def __init__(
        self,
        rank: RankInfo,
        *,
        hyper_params: dict[str, str] | None,
        dataset_map: dict[str, Any] | None,
        model_dir: str,
        default_backend: str,
    ) -> None:
        self._rank = rank
        self._hyper_params = hyper_params
        self._dataset_map = dataset_map
        self._model_dir = model_dir
        self._default_backend = default_backend
        self._metrics = MetricsReporter()

    def get_world_size(self) -> int:
        return self._rank.world_size

    def get_world_rank(self) -> int:
        """The reference's other name for :meth:`get_rank`."""
        return self.get_rank()

    def get_artifact_manager(self) -> ArtifactManager:
        """Files saved through it go into :meth:`get_model_dir` (rank 0's is uploaded)."""
        return ArtifactManager(self._model_dir)

    def get_rank(self) -> int:
        return self._rank.rank

    def get_local_rank(self) -> int:
        return self._rank.local_rank

    def get_local_world_size(self) -> int:
        return self._rank.local_world_size

    def get_node_rank(self) -> int:
        return self._rank.node_rank

    def get_master_addr(self) -> str:
        return self._rank.master_addr

    def get_master_port(self) -> int:
        return self._rank.master_port

    def get_default_backend(self) -> str:
        """``nccl`` when this worker has a GPU, else ``gloo``."""
        return self._default_backend

    def get_supported_backends(self) -> list[str]:
        return [GPU_BACKEND, CPU_BACKEND] if self._rank.gpus > 0 else [CPU_BACKEND]

    def get_hyper_params(self) -> dict[str, str] | None:
        return self._hyper_params

    def get_dataset_map(self) -> dict[str, Any] | None:
        """``run(dataset_map=...)``: a ShardedDataConnector holds only this rank's shard."""
        return self._dataset_map

    def get_model_dir(self) -> str:
        """A local folder for the model; rank 0's is uploaded to the artifact stage afterwards."""
        return self._model_dir

    def get_metrics_reporter(self) -> MetricsReporter:
        return self._metrics


_current: dict[str, Context | None] = {"context": None}


def set_context(context: Context | None) -> None:
    _current["context"] = context


def get_context() -> Context:
    """The calling worker's context; ``RuntimeError`` outside a ``train_func``."""
    context = _current["context"]
    if context is None:
        raise RuntimeError("get_context() works only inside a train_func run by PyTorchDistributor.run(...)")
    return context
