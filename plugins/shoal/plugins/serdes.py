"""Built-in plugin: model serdes ``pickle`` (default, any picklable model) and ``torch``.

Runs wherever a model is saved or loaded (workers and the driver). ``torch`` is imported only
when the torch serde writes or reads.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from typing import Any

import cloudpickle

from shoal.contributions import ModelSerdeSpec
from shoal.hookspecs import hookimpl
from shoal.serde import ModelSerde


def _atomic_write_bytes(file_path: str, data: bytes) -> None:
    tmp = f"{file_path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, file_path)


class PickleSerde(ModelSerde):
    """Pickles the model with cloudpickle (so locally defined classes survive); file ``model.pkl``."""

    @property
    def filename(self) -> str:
        return "model.pkl"

    def write(self, model: Any, file_path: str) -> None:
        _atomic_write_bytes(file_path, cloudpickle.dumps(model))

    def read(self, file_path: str) -> Any:
        with open(file_path, "rb") as handle:
            return pickle.load(handle)


class TorchSerde(ModelSerde):
    """Saves a torch module (or state dict) with ``torch.save``; file ``model.pth``."""

    @property
    def filename(self) -> str:
        return "model.pth"

    def write(self, model: Any, file_path: str) -> None:
        import torch

        tmp = f"{file_path}.tmp-{os.getpid()}"
        torch.save(model, tmp)
        os.replace(tmp, file_path)

    def read(self, file_path: str) -> Any:
        import torch

        return torch.load(file_path, weights_only=False)


@hookimpl
def shoal_model_serdes() -> Iterator[ModelSerdeSpec]:
    yield ModelSerdeSpec(name="pickle", factory=PickleSerde, description="cloudpickle, model.pkl (default)")
    yield ModelSerdeSpec(name="torch", factory=TorchSerde, description="torch.save, model.pth")
