"""What plugins contribute, and what lifecycle hooks receive.

Contribution hooks (``shoal_estimators``, ``shoal_stage_backends``, ...) return instances of
the frozen ``*Spec`` dataclasses below. Each validates itself when it is built, so a plugin
that contributes something malformed fails at load time with a message that says which field
is wrong, not later inside a job. Names are case-insensitive and stored lower-case.

The factories a spec carries are called lazily: building a spec must never import a heavy
framework (xgboost, torch, ...). Only calling its factory may.

Lifecycle hooks receive the small ``*Info`` records at the end of this module.

Runs anywhere: the driver builds specs when it loads plugins, and every worker rebuilds them
when it rebuilds its plugin manager.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from shoal.errors import PluginError

_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*$")


def normalize_contribution_name(name: object, what: str) -> str:
    """Return ``name`` lower-cased, or raise :class:`PluginError` if it is not a valid name."""
    if not isinstance(name, str):
        raise PluginError(f"{what}: name must be a string, got {type(name).__name__} {name!r}")
    normalized = name.strip().lower()
    if not _NAME_RE.match(normalized):
        raise PluginError(
            f"{what}: invalid name {name!r}; use letters, digits, '_', '-' or '.', starting with a letter"
        )
    return normalized


def _require_callable(spec: object, attr: str) -> None:
    value = getattr(spec, attr)
    if not callable(value):
        raise PluginError(
            f"{type(spec).__name__}({getattr(spec, 'name', '?')!r}): {attr} must be callable, "
            f"got {type(value).__name__}"
        )


@dataclass(frozen=True, kw_only=True)
class Contribution:
    """Base of every contribution: a unique ``name`` within its kind and a one-line description."""

    kind: ClassVar[str] = "contribution"
    name: str
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", normalize_contribution_name(self.name, type(self).__name__))
        if not isinstance(self.description, str):
            raise PluginError(f"{type(self).__name__}({self.name!r}): description must be a string")

    @property
    def names(self) -> tuple[str, ...]:
        """The name and every alias under which this contribution can be selected."""
        return (self.name,)


@dataclass(frozen=True, kw_only=True)
class EstimatorSpec(Contribution):
    """A distributed estimator (trainer) backend, e.g. ``xgboost``.

    ``factory(**options)`` builds the estimator backend: its driver side starts and stops the
    framework's rendezvous, its worker side wraps training. ``frameworks`` lists the modules
    the factory imports, so ``shoal plugins list`` can say what is missing without importing them.
    """

    kind: ClassVar[str] = "estimators"
    factory: Callable[..., Any]
    aliases: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()
    supports_gpu: bool = False
    #: the model serde many-model training saves this estimator's models with, by name
    model_serde: str = "pickle"

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_callable(self, "factory")
        aliases = tuple(
            normalize_contribution_name(a, f"EstimatorSpec({self.name!r}) alias") for a in self.aliases
        )
        if self.name in aliases:
            raise PluginError(f"EstimatorSpec({self.name!r}): an alias must not repeat the name")
        object.__setattr__(self, "aliases", aliases)
        object.__setattr__(self, "frameworks", tuple(str(f) for f in self.frameworks))

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True, kw_only=True)
class PartitionFunctionSpec(Contribution):
    """A named per-partition function ``function(data_connector, context)``, usable by name in DPF."""

    kind: ClassVar[str] = "partition_functions"
    function: Callable[..., Any]

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_callable(self, "function")


@dataclass(frozen=True, kw_only=True)
class PartitionerSpec(Contribution):
    """A custom way to split SQL-mode input into partitions (hash buckets, derived keys, chunks...).

    ``factory(**options)`` builds the partitioner object the scheduler calls.
    """

    kind: ClassVar[str] = "partitioners"
    factory: Callable[..., Any]

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_callable(self, "factory")


@dataclass(frozen=True, kw_only=True)
class DataSourceSpec(Contribution):
    """An input kind that ``DataConnector`` and SQL-mode partitioning accept.

    ``accepts(obj)`` says whether this source reads ``obj`` (it must be cheap and must not import
    anything heavy unless ``obj`` already comes from that library); ``factory(obj, **options)``
    builds the reader. Exactly one source may accept a given object.
    """

    kind: ClassVar[str] = "data_sources"
    accepts: Callable[[Any], bool]
    factory: Callable[..., Any]

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_callable(self, "accepts")
        _require_callable(self, "factory")


@dataclass(frozen=True, kw_only=True)
class StageBackendSpec(Contribution):
    """Storage for stages whose URL has one of ``schemes``; ``factory(url)`` returns a StageBackend."""

    kind: ClassVar[str] = "stage_backends"
    schemes: tuple[str, ...]
    factory: Callable[[str], Any]

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_callable(self, "factory")
        if isinstance(self.schemes, str) or not self.schemes:
            raise PluginError(
                f"StageBackendSpec({self.name!r}): schemes must be a non-empty tuple of URL schemes, "
                f"got {self.schemes!r}"
            )
        schemes = tuple(str(s).strip().lower().removesuffix("://") for s in self.schemes)
        bad = [s for s in schemes if not _SCHEME_RE.match(s)]
        if bad:
            raise PluginError(f"StageBackendSpec({self.name!r}): invalid URL scheme(s) {bad}")
        object.__setattr__(self, "schemes", schemes)


@dataclass(frozen=True, kw_only=True)
class ModelSerdeSpec(Contribution):
    """A way to write and read models; ``factory()`` returns a :class:`~shoal.serde.ModelSerde`."""

    kind: ClassVar[str] = "model_serdes"
    factory: Callable[[], Any]

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_callable(self, "factory")


@dataclass(frozen=True, kw_only=True)
class ComputePoolBackendSpec(Contribution):
    """A kind of compute pool (``local``, ``ray``...); ``factory(pool_record)`` returns the backend."""

    kind: ClassVar[str] = "compute_pool_backends"
    factory: Callable[..., Any]

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_callable(self, "factory")


CONTRIBUTION_TYPES: dict[str, type[Contribution]] = {
    cls.kind: cls
    for cls in (
        EstimatorSpec,
        PartitionFunctionSpec,
        PartitionerSpec,
        DataSourceSpec,
        StageBackendSpec,
        ModelSerdeSpec,
        ComputePoolBackendSpec,
    )
}


# ---------------------------------------------------------------------------------------------
# Records passed to lifecycle hooks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobInfo:
    """A multi-node job, as lifecycle hooks see it."""

    job_id: str
    name: str
    compute_pool: str
    stage_name: str
    target_instances: int
    min_instances: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunInfo:
    """A distributed-partition-function run, as lifecycle hooks see it."""

    run_id: str
    stage_name: str
    mode: str  # "sql" or "stage"
    num_partitions: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionInfo:
    """One attempt at one partition of a run, as lifecycle hooks see it."""

    run_id: str
    partition_id: str
    attempt: int
    stage_path_prefix: str
    extra: dict[str, Any] = field(default_factory=dict)
