"""Hook implementation of the PyTorch plugin (imports no framework).

Runs on the driver and, after the plugin manager is rebuilt, on training workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shoal.contributions import EstimatorSpec
from shoal.hookspecs import hookimpl


def make_backend(**options: Any) -> Any:
    from shoal.plugins.torch.backend import TorchBackend

    return TorchBackend(**options)


@hookimpl
def shoal_estimators() -> Iterator[EstimatorSpec]:
    yield EstimatorSpec(
        name="pytorch", factory=make_backend, aliases=("torch",), frameworks=("torch",), supports_gpu=True
    )
