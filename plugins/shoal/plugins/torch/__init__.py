"""The PyTorch plugin: ``PyTorchDistributor``, its scaling configs and ``get_context``.

Registered through the ``shoal`` entry-point group (``torch = shoal.plugins.torch.plugin``),
exactly as a third-party trainer is. Importing this package does not import torch: the names
below load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PyTorchDistributor",
    "PyTorchDistributorResult",
    "PyTorchScalingConfig",
    "WorkerResourceConfig",
    "get_context",
]

_HOMES = {
    "PyTorchDistributor": "distributor",
    "PyTorchDistributorResult": "distributor",
    "PyTorchScalingConfig": "distributor",
    "WorkerResourceConfig": "distributor",
    "get_context": "context",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"shoal.plugins.torch.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
