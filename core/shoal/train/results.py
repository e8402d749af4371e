"""A rank's result as the bytes its worker pickled, unpickled only by the process that uses it.

A rank's result is usually the framework's model (an ``xgboost.Booster``, a
``lightgbm.Booster``). Unpickling it imports the framework: 1.2 to 1.5 s of CPU on this project's
2-core machine, measured on the training driver at the end of every fit, after the ranks finished
and before the caller got its model. When the training driver only hands rank 0's result back
to the caller (a training submitted as a job, whose backend keeps the default
``EstimatorBackend.collect``), it never needs the object: :class:`PickledResult` keeps the bytes
and pickles itself as "unpickle these bytes", so the job's result becomes the model again in the
caller's process, which imports the framework once, to use the model.

Built in the training driver (:mod:`shoal.runtime.train_group`); unpickled in the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cloudpickle


@dataclass(frozen=True)
class PickledResult:
    """What a rank returned, still pickled (cloudpickle)."""

    blob: bytes

    def load(self) -> Any:
        """The result itself (imports what it needs, here)."""
        return cloudpickle.loads(self.blob)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # pickled again (as a job's result), it becomes the result itself where it is unpickled
        return cloudpickle.loads, (self.blob,)


def loaded(result: Any) -> Any:
    """``result`` itself, unpickled if it is a :class:`PickledResult`."""
    return result.load() if isinstance(result, PickledResult) else result
