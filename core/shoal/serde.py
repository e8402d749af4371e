"""Model serializers: how a trained model becomes a file on a stage and back.

A :class:`ModelSerde` names the file it writes (``filename``) and knows how to ``write`` a
model to a local path and ``read`` it back. Serdes are contributed through the
``shoal_model_serdes`` hook; the built-ins are ``pickle`` (the default) and ``torch``.

Runs on the worker that saves a model and in the process that loads it back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class ModelSerde(ABC):
    """Writes a model to one local file and reads it back."""

    @property
    @abstractmethod
    def filename(self) -> str:
        """The flat file name the model is stored under, e.g. ``model.pkl``."""

    @abstractmethod
    def write(self, model: Any, file_path: str) -> None:
        """Write ``model`` to the local file ``file_path``."""

    @abstractmethod
    def read(self, file_path: str) -> Any:
        """Read a model back from the local file ``file_path``."""
