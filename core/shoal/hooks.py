"""Typed access to every hook. The only module in shoal that calls ``pm.hook.*``.

Contribution hooks are collected by :func:`collect`: each plugin's results are checked to be
the right spec type, names (and aliases) are merged, and a name contributed by two plugins is a
:class:`~shoal.errors.PluginError` naming both distributions. Selection by name
(``get_estimator("xgboost")``) raises :class:`~shoal.errors.ConfigError` listing the choices.

Every call goes through pluggy's hook call, so ``SHOAL_TRACE_PLUGINS=1`` traces it and
``wrapper=True`` implementations wrap it. When two or more plugins implement a hook, each
plugin's implementation is called through its own pluggy call (``pm.subset_hook_caller``), so a
contribution can be traced back to its plugin and one plugin that raises cannot stop the others;
a wrapper then wraps each of those calls.

Lifecycle notifications call every implementation; an implementation that raises is logged
and does not stop the others, nor the job, run or partition being observed.

Runs on the driver and on workers, against this process's plugin manager.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from shoal.contributions import (
    CONTRIBUTION_TYPES,
    ComputePoolBackendSpec,
    Contribution,
    DataSourceSpec,
    EstimatorSpec,
    JobInfo,
    ModelSerdeSpec,
    PartitionerSpec,
    PartitionFunctionSpec,
    PartitionInfo,
    RunInfo,
    StageBackendSpec,
)
from shoal.errors import ConfigError, PluginError
from shoal.plugin_manager import ShoalPluginManager, get_plugin_manager

log = logging.getLogger(__name__)

SpecT = TypeVar("SpecT", bound=Contribution)


def _describe(pm: ShoalPluginManager, plugin_name: str) -> str:
    record = pm.record(plugin_name)
    return record.describe() if record else f"'{plugin_name}'"


def _as_items(result: Any) -> Iterable[Any]:
    if result is None:
        return ()
    if isinstance(result, Contribution):
        return (result,)
    if isinstance(result, (str, bytes, dict)):
        return (result,)  # rejected by the type check below with a clear message
    try:
        return list(result)
    except TypeError:
        return (result,)


def _implementers(pm: ShoalPluginManager, hook_name: str) -> list[str]:
    """Names of the plugins with a (non-wrapper) implementation of the hook, in call order."""
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    return [impl.plugin_name for impl in reversed(impls) if not (impl.wrapper or impl.hookwrapper)]


def _call_each(pm: ShoalPluginManager, hook_name: str, kwargs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Call the hook through pluggy once per implementing plugin; yield ``(plugin, result)``.

    ``result`` is the list pluggy returns (one item, or none when the implementation returned
    None), or the exception the call raised; the caller decides what an exception means.
    """
    names = _implementers(pm, hook_name)
    if len(names) <= 1:
        callers = [(names[0] if names else "", getattr(pm.hook, hook_name))]
    else:
        plugins = {name: pm.get_plugin(name) for name in names}
        callers = [
            (name, pm.subset_hook_caller(hook_name, [p for other, p in plugins.items() if other != name]))
            for name in names
        ]
    for name, caller in callers:
        try:
            yield name, caller(**kwargs)
        except Exception as exc:
            yield name, exc


def collect_with_origin(kind: str, pm: ShoalPluginManager | None = None) -> list[tuple[Contribution, str]]:
    """Call ``shoal_<kind>`` on every plugin; return ``(spec, plugin name)`` pairs, validated.

    The pairs are kept on the manager (``pm.contributions``) until a plugin is registered or
    unregistered: the hook is called once per kind, not on every ``Stage()`` or lookup."""
    if kind not in CONTRIBUTION_TYPES:
        raise ValueError(f"unknown contribution kind {kind!r}; choose one of {sorted(CONTRIBUTION_TYPES)}")
    pm = pm or get_plugin_manager()
    cache = getattr(pm, "contributions", None)
    if cache is not None and kind in cache:
        return list(cache[kind])
    pairs = _collect(kind, pm)
    if cache is not None:
        cache[kind] = tuple(pairs)
    return pairs


def _collect(kind: str, pm: ShoalPluginManager) -> list[tuple[Contribution, str]]:
    expected = CONTRIBUTION_TYPES[kind]
    pairs: list[tuple[Contribution, str]] = []
    for plugin_name, results in _call_each(pm, f"shoal_{kind}", {}):
        if isinstance(results, PluginError):
            raise results
        if isinstance(results, Exception):
            raise PluginError(
                f"Plugin {_describe(pm, plugin_name)} failed in shoal_{kind}(): "
                f"{type(results).__name__}: {results}"
            ) from results
        for item in (item for result in results for item in _as_items(result)):
            if not isinstance(item, expected):
                raise PluginError(
                    f"Plugin {_describe(pm, plugin_name)} returned {type(item).__name__} "
                    f"{item!r:.80} from shoal_{kind}(); expected {expected.__name__} "
                    f"(from shoal.contributions)."
                )
            pairs.append((item, plugin_name))
    return pairs


def collect(kind: str, pm: ShoalPluginManager | None = None) -> dict[str, Contribution]:
    """Every contribution of ``kind`` by canonical name, sorted; duplicates are an error."""
    pm = pm or get_plugin_manager()
    pairs = collect_with_origin(kind, pm)
    owners: dict[str, list[tuple[Contribution, str]]] = {}
    for spec, plugin_name in pairs:
        for name in spec.names:
            owners.setdefault(name, []).append((spec, plugin_name))
    conflicts = {name: found for name, found in owners.items() if len(found) > 1}
    if conflicts:
        lines = [
            f"  - '{name}' provided by: " + ", ".join(_describe(pm, p) for _, p in found)
            for name, found in sorted(conflicts.items())
        ]
        raise PluginError(
            f"Conflicting plugins found for `{kind}`:\n"
            + "\n".join(lines)
            + "\nUninstall one of the distributions, or block one plugin with SHOAL_BLOCKED_PLUGINS=<name>."
        )
    return {spec.name: spec for spec, _ in sorted(pairs, key=lambda pair: pair[0].name)}


def _select(kind: str, label: str, name: str, expected: type[SpecT]) -> SpecT:
    specs = collect(kind)
    wanted = str(name).strip().lower()
    for spec in specs.values():
        if wanted in spec.names:
            assert isinstance(spec, expected)
            return spec
    choices = sorted(n for spec in specs.values() for n in spec.names)
    close = difflib.get_close_matches(wanted, choices, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    available = ", ".join(choices) if choices else "(none installed)"
    raise ConfigError(f"Unknown {label} {name!r}.{hint} Choose one of: {available}.")


# -- contribution hooks, typed --------------------------------------------------------------


def estimators() -> dict[str, EstimatorSpec]:
    """All estimators by name."""
    return {k: v for k, v in collect("estimators").items() if isinstance(v, EstimatorSpec)}


def get_estimator(name: str) -> EstimatorSpec:
    """The estimator called ``name`` (or one of its aliases)."""
    return _select("estimators", "estimator", name, EstimatorSpec)


def partition_functions() -> dict[str, PartitionFunctionSpec]:
    """All named partition functions."""
    return {k: v for k, v in collect("partition_functions").items() if isinstance(v, PartitionFunctionSpec)}


def get_partition_function(name: str) -> PartitionFunctionSpec:
    return _select("partition_functions", "partition function", name, PartitionFunctionSpec)


def partitioners() -> dict[str, PartitionerSpec]:
    """All custom partitioners."""
    return {k: v for k, v in collect("partitioners").items() if isinstance(v, PartitionerSpec)}


def get_partitioner(name: str) -> PartitionerSpec:
    return _select("partitioners", "partitioner", name, PartitionerSpec)


def data_sources() -> dict[str, DataSourceSpec]:
    """All data-source kinds."""
    return {k: v for k, v in collect("data_sources").items() if isinstance(v, DataSourceSpec)}


def get_data_source(name: str) -> DataSourceSpec:
    return _select("data_sources", "data source", name, DataSourceSpec)


def data_source_for(obj: Any) -> DataSourceSpec:
    """The one data source that accepts ``obj``; none or several is an error naming them."""
    specs = list(data_sources().values())
    matches = [spec for spec in specs if spec.accepts(obj)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        names = ", ".join(s.name for s in specs) or "(none installed)"
        raise ConfigError(
            f"No data source accepts an object of type {type(obj).__module__}.{type(obj).__qualname__}. "
            f"Installed data sources: {names}. Install a plugin that contributes one (shoal_data_sources)."
        )
    raise PluginError(
        f"Several data sources accept {type(obj).__qualname__}: {', '.join(s.name for s in matches)}. "
        f"Block one with SHOAL_BLOCKED_PLUGINS=<plugin> or pass the source by name."
    )


def stage_backends() -> dict[str, StageBackendSpec]:
    """All stage backends by name."""
    return {k: v for k, v in collect("stage_backends").items() if isinstance(v, StageBackendSpec)}


def stage_backend_for_scheme(scheme: str) -> StageBackendSpec:
    """The stage backend serving URL ``scheme``; none or several is an error naming them."""
    pm = get_plugin_manager()
    scheme = scheme.lower()
    pairs = [(s, p) for s, p in collect_with_origin("stage_backends", pm) if isinstance(s, StageBackendSpec)]
    matches = [(spec, plugin) for spec, plugin in pairs if scheme in spec.schemes]
    if len(matches) == 1:
        return matches[0][0]
    if not matches:
        known = sorted({s for spec, _ in pairs for s in spec.schemes})
        raise ConfigError(
            f"No stage backend serves URL scheme '{scheme}://'. Known schemes: {', '.join(known)}. "
            f"Install a plugin that contributes one through shoal_stage_backends."
        )
    owners = ", ".join(f"{spec.name} from {_describe(pm, plugin)}" for spec, plugin in matches)
    raise PluginError(
        f"Conflicting plugins found for `stage_backends`: URL scheme '{scheme}' is served by {owners}. "
        f"Block one plugin with SHOAL_BLOCKED_PLUGINS=<name>."
    )


def model_serdes() -> dict[str, ModelSerdeSpec]:
    """All model serdes by name."""
    return {k: v for k, v in collect("model_serdes").items() if isinstance(v, ModelSerdeSpec)}


def get_model_serde(name: str) -> ModelSerdeSpec:
    return _select("model_serdes", "model serde", name, ModelSerdeSpec)


def compute_pool_backends() -> dict[str, ComputePoolBackendSpec]:
    """All compute-pool backends by name."""
    return {
        k: v for k, v in collect("compute_pool_backends").items() if isinstance(v, ComputePoolBackendSpec)
    }


def get_compute_pool_backend(name: str) -> ComputePoolBackendSpec:
    return _select("compute_pool_backends", "compute pool backend", name, ComputePoolBackendSpec)


# -- lifecycle hooks ------------------------------------------------------------------------


def _notify(hook_name: str, **kwargs: Any) -> None:
    pm = get_plugin_manager()
    for plugin_name, result in _call_each(pm, hook_name, kwargs):
        if isinstance(result, Exception):
            log.error(
                "lifecycle hook %s of plugin %s raised; ignored",
                hook_name,
                _describe(pm, plugin_name),
                exc_info=result,
            )


def notify_before_job(job: JobInfo) -> None:
    _notify("shoal_before_job", job=job)


def notify_after_job(job: JobInfo, status: str) -> None:
    _notify("shoal_after_job", job=job, status=status)


def notify_job_error(job: JobInfo, error: BaseException) -> None:
    _notify("shoal_on_job_error", job=job, error=error)


def notify_before_run(run: RunInfo) -> None:
    _notify("shoal_before_run", run=run)


def notify_after_run(run: RunInfo, status: str) -> None:
    _notify("shoal_after_run", run=run, status=status)


def notify_run_error(run: RunInfo, error: BaseException) -> None:
    _notify("shoal_on_run_error", run=run, error=error)


def notify_before_partition(partition: PartitionInfo) -> None:
    _notify("shoal_before_partition", partition=partition)


def notify_after_partition(partition: PartitionInfo, status: str) -> None:
    _notify("shoal_after_partition", partition=partition, status=status)


def notify_partition_error(partition: PartitionInfo, error: BaseException) -> None:
    _notify("shoal_on_partition_error", partition=partition, error=error)
