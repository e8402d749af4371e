"""Model serializers: how a trained model becomes a file on a stage and back.

A :class:`ModelSerde` names the file it writes (``filename``) and knows how to ``write`` a
model to a local path and ``read`` it back. Serdes are contributed through the
``shoal_model_serdes`` hook; the built-ins are ``pickle`` (the default) and ``torch``.

:class:`SerdeRef` is how a run records its serde, so that any later process reads its models
back with the same one (:func:`shoal.mmt.serde_ref.resolve` makes it).

Runs on the worker that saves a model and in the process that loads it back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from shoal.wire import WireSpec


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


@dataclass(frozen=True)
class SerdeRef(WireSpec):
    """A serde as a run records it (in its definition, :mod:`shoal.dpf.definition`): ``name`` of
    a registered serde, or the instance ``pickled`` (hex)."""

    filename: str
    name: str | None = None
    pickled: str | None = None

    def load(self) -> ModelSerde:
        """The serde instance (a registered one built anew, or the pickled one)."""
        if self.name is not None:
            from shoal import hooks

            serde = hooks.get_model_serde(self.name).factory()
        else:
            import cloudpickle

            assert self.pickled is not None
            serde = cloudpickle.loads(bytes.fromhex(self.pickled))
        if not isinstance(serde, ModelSerde):
            raise TypeError(f"serde {self.name or 'pickled'!r} is a {type(serde).__name__}, not a ModelSerde")
        return serde

    @property
    def label(self) -> str:
        return self.name or "custom"
