"""Which serde a many-model run uses, written down so that any later process reads its models
back with the same one.

A serde registered through the ``shoal_model_serdes`` hook is recorded by name (nothing to
unpickle when the run is read back); any other :class:`~shoal.serde.ModelSerde` instance is
recorded pickled. Runs on the driver (when a run starts and when it is read back) and on workers.
"""

from __future__ import annotations

import cloudpickle

from shoal.serde import ModelSerde, SerdeRef

__all__ = ["DEFAULT_SERDE", "SerdeRef", "resolve"]

DEFAULT_SERDE = "pickle"


def resolve(serde: ModelSerde | str | None) -> tuple[ModelSerde, SerdeRef]:
    """The serde instance for ``serde`` (an instance, a registered name, or None for the default)
    and how a run records it. Raises before anything runs when it is not a serde."""
    from shoal import hooks

    if serde is None or isinstance(serde, str):
        spec = hooks.get_model_serde(serde or DEFAULT_SERDE)
        instance = spec.factory()
        return instance, SerdeRef(filename=_filename(instance), name=spec.name)
    if not isinstance(serde, ModelSerde):
        raise TypeError(
            f"serde must be a shoal.mmt.ModelSerde (filename, write, read) or a registered serde's name, "
            f"got {type(serde).__name__}"
        )
    for name, spec in hooks.model_serdes().items():
        if (
            isinstance(spec.factory, type)
            and type(serde) is spec.factory
            and _same_state(serde, spec.factory)
        ):
            return serde, SerdeRef(filename=_filename(serde), name=name)
    return serde, SerdeRef(filename=_filename(serde), pickled=cloudpickle.dumps(serde).hex())


def _same_state(serde: ModelSerde, factory: type) -> bool:
    """A registered class built with no arguments: recording its name loses nothing."""
    try:
        return bool(vars(serde) == vars(factory()))
    except Exception:
        return False


def _filename(serde: ModelSerde) -> str:
    from shoal.dpf import layout

    name = serde.filename
    layout.check_flat_filename(name)
    return name
