"""PyTorch's backend: torch.distributed rendezvous on the master address and port the core chose.

* ``worker_context`` (worker): the process-group backend is ``nccl`` when the worker has a GPU,
  else ``gloo``; the torchrun environment (``MASTER_ADDR``/``MASTER_PORT``/``RANK``/
  ``WORLD_SIZE``/``LOCAL_RANK``...) is already set; the default process group is initialised
  with it, and ``torch.distributed.init_process_group`` is wrapped while ``train_func`` runs so
  a function that calls it itself (the reference's style) joins the existing group instead of
  failing; asking for another backend re-creates the group with it. The group is destroyed on
  exit.
* ``train`` (worker): ``train_func()`` with :func:`~shoal.plugins.torch.context.get_context`
  available; rank 0 then uploads its model folder to the artifact stage and returns the
  location and the metrics it reported.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from shoal.train.backend import EstimatorBackend, TrainTask
from shoal.train.ranks import RankInfo
from shoal.train.scaling import ScalingRequest

PROCESS_GROUP_TIMEOUT_S = 300


class TorchBackend(EstimatorBackend):
    ports_per_worker = 1
    worker_modules = ("torch", "torch.distributed")

    def __init__(
        self,
        *,
        train_func: Callable[[], Any],
        scaling: ScalingRequest,
        hyper_params: dict[str, str] | None = None,
        stage: tuple[str, str] | None = None,
        model_prefix: str = "",
    ) -> None:
        self.train_func = train_func
        self._scaling = scaling
        self.hyper_params = hyper_params
        self.stage = stage
        self.model_prefix = model_prefix

    @property
    def scaling(self) -> ScalingRequest:
        return self._scaling

    @contextlib.contextmanager
    def worker_context(self, rank: RankInfo, setup: Any) -> Iterator[None]:
        import torch.distributed as dist

        backend = "nccl" if rank.gpus > 0 else "gloo"
        if rank.gpus > 0:
            import torch

            torch.cuda.set_device(0)  # Ray sets CUDA_VISIBLE_DEVICES to this worker's GPU
        timeout = datetime.timedelta(seconds=PROCESS_GROUP_TIMEOUT_S)
        dist.init_process_group(
            backend=backend, init_method="env://", rank=rank.rank, world_size=rank.world_size, timeout=timeout
        )
        original = dist.init_process_group

        def join_existing(backend: Any = None, *args: Any, **kwargs: Any) -> Any:
            if dist.is_initialized():
                if backend is None or str(backend).lower() == str(dist.get_backend()).lower():
                    return None
                dist.destroy_process_group()
            kwargs.setdefault("timeout", timeout)
            return original(backend, *args, **kwargs)

        dist.init_process_group = join_existing
        try:
            yield
        finally:
            dist.init_process_group = original
            if dist.is_initialized():
                with contextlib.suppress(Exception):
                    dist.destroy_process_group()

    def train(self, rank: RankInfo, task: TrainTask, setup: Any) -> Any:
        import torch.distributed as dist

        from shoal.plugins.torch.context import Context, set_context

        model_dir = tempfile.mkdtemp(prefix=f"model-rank{rank.rank}-", dir=os.environ.get("SHOAL_TRAIN_DIR"))
        context = Context(
            rank,
            hyper_params=self.hyper_params,
            dataset_map=task.shards or None,
            model_dir=model_dir,
            default_backend=dist.get_backend() if dist.is_initialized() else "gloo",
        )
        set_context(context)
        try:
            value = self.train_func()
            if rank.rank != 0:
                return None
            location = self._upload(Path(model_dir)) if self.stage else None
            return {"model_dir": location, "metrics": context.get_metrics_reporter().history, "value": value}
        finally:
            set_context(None)
            shutil.rmtree(model_dir, ignore_errors=True)

    def _upload(self, folder: Path) -> str:
        from shoal.stages import Stage

        assert self.stage is not None
        stage = Stage(*self.stage)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            stage.write_bytes(f"{self.model_prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes())
        return f"@{stage.name}/{self.model_prefix}"
