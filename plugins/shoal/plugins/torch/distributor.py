"""``PyTorchDistributor``: run a ``train_func`` on ``num_nodes x num_workers_per_node`` workers.

.. code-block:: python

    from shoal.plugins.torch import (PyTorchDistributor, PyTorchScalingConfig,
                                     WorkerResourceConfig, get_context)

    def train_func():
        import torch.distributed as dist
        dist.init_process_group()                 # optional: shoal already joined the group
        context = get_context()                   # rank, world size, dataset map, model dir, ...
        ...
        torch.save(model.state_dict(), f"{context.get_model_dir()}/model.pt")

    result = PyTorchDistributor(train_func, PyTorchScalingConfig(
        num_nodes=2, num_workers_per_node=1,
        resource_requirements_per_worker=WorkerResourceConfig(num_cpus=1))).run(
            dataset_map={"train": ShardedDataConnector.from_dataframe(df)})
    result.get_model_dir()                        # "@stage/.../model/<run id>"

Runs on the driver; ``train_func`` runs on the workers (see ``shoal.plugins.torch.backend``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal.errors import ConfigError
from shoal.train.scaling import ScalingRequest

DEFAULT_ARTIFACT_LOCATION = "@SHOAL_TRAINING/pytorch"


@dataclass
class WorkerResourceConfig:
    """Resources of each worker: ``num_cpus`` (logical Ray CPUs) and ``num_gpus``."""

    num_cpus: float = 1
    num_gpus: float = 0


@dataclass
class PyTorchScalingConfig:
    """``num_nodes`` nodes of the job, ``num_workers_per_node`` workers on each."""

    num_nodes: int = 1
    num_workers_per_node: int = 1
    resource_requirements_per_worker: WorkerResourceConfig = field(default_factory=WorkerResourceConfig)

    def to_request(self) -> ScalingRequest:
        resources = self.resource_requirements_per_worker
        return ScalingRequest(
            num_nodes=self.num_nodes,
            workers_per_node=self.num_workers_per_node,
            cpus_per_worker=resources.num_cpus,
            gpus_per_worker=resources.num_gpus,
        )


class PyTorchDistributorResult:
    """What ``run`` returns: the model folder on the stage and rank 0's reported metrics."""

    def __init__(self, model_dir: str | None, metrics: list[dict[str, Any]], value: Any) -> None:
        self._model_dir = model_dir
        self._metrics = metrics
        self.value = value

    def get_model_dir(self) -> str | None:
        """``@stage/<path>/model/<run id>``: what rank 0 wrote to ``get_context().get_model_dir()``."""
        return self._model_dir

    def get_metrics(self) -> dict[str, list[Any]]:
        """Metric name -> values, in the order rank 0 reported them with ``log_metrics``."""
        merged: dict[str, list[Any]] = {}
        for entry in self._metrics:
            for key, value in entry.items():
                merged.setdefault(key, []).append(value)
        return merged

    def download_model(self, local_dir: str | Path) -> list[str]:
        """Copy the model folder from the stage into ``local_dir``; returns the local paths."""
        from shoal.stages.api import get

        if self._model_dir is None:
            raise RuntimeError("this run kept no model folder")
        return get(self._model_dir + "/", local_dir)


class PyTorchDistributor:
    """The reference product's distributor: ``PyTorchDistributor(train_func, scaling_config).run(...)``."""

    def __init__(
        self,
        train_func: Callable[[], Any],
        scaling_config: PyTorchScalingConfig | None = None,
        *,
        compute_pool: str | None = None,
    ) -> None:
        if not callable(train_func):
            raise TypeError(
                f"train_func must be a function taking no arguments, got {type(train_func).__name__}"
            )
        self.train_func = train_func
        self.scaling_config = scaling_config or PyTorchScalingConfig()
        self.compute_pool = compute_pool

    def run(
        self,
        *,
        dataset_map: dict[str, Any] | None = None,
        hyper_params: dict[str, str] | None = None,
        artifact_stage_location: str | None = None,
    ) -> PyTorchDistributorResult:
        """Train on the job's nodes (or as a job on the default pool); see the module docstring."""
        from shoal import hooks
        from shoal.extras import require
        from shoal.stages import create_stage, get_stage
        from shoal.stages.names import parse_location
        from shoal.train.backend import build_backend
        from shoal.train.runner import run_training

        require(hooks.get_estimator("pytorch").frameworks, "the 'pytorch' estimator")  # before the stage

        if dataset_map is not None and not isinstance(dataset_map, dict):
            raise ConfigError(
                f"dataset_map must be a dict of name -> DataConnector, got {type(dataset_map).__name__}"
            )
        if hyper_params is not None and not isinstance(hyper_params, dict):
            raise ConfigError(f"hyper_params must be a dict, got {type(hyper_params).__name__}")
        scaling = self.scaling_config.to_request()
        location = artifact_stage_location or DEFAULT_ARTIFACT_LOCATION
        stage_name, inner = parse_location(location)
        try:  # a stage that does not exist yet is created, as DPF(...) and @remote(stage_name=...) do
            stage = get_stage(stage_name)
        except LookupError:
            stage = create_stage(stage_name, exist_ok=True)
        run_id = uuid.uuid4().hex[:12]
        prefix = "/".join(p for p in (inner.strip("/"), "model", run_id) if p)
        name, backend = build_backend(
            "pytorch",
            train_func=self.train_func,
            scaling=scaling,
            hyper_params=dict(hyper_params) if hyper_params is not None else None,
            stage=(stage.name, stage.url),
            model_prefix=prefix,
        )
        outcome = run_training(
            backend,
            dict(dataset_map or {}),
            compute_pool=self.compute_pool,
            name=name,
            user_code=[self.train_func],
        )
        return PyTorchDistributorResult(outcome["model_dir"], outcome["metrics"], outcome["value"])
