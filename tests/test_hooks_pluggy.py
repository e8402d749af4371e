"""Hooks are called through pluggy: SHOAL_TRACE_PLUGINS traces them, ``wrapper=True``
implementations wrap them, and with several plugins each still answers for itself."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from shoal import hookimpl, hooks
from shoal.contributions import ModelSerdeSpec, RunInfo
from shoal.errors import PluginError
from shoal.testing import fresh_plugin_manager

RUN = RunInfo(run_id="r1", stage_name="S", mode="sql", num_partitions=4)


class Seen:
    """Records the runs it was told about."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    @hookimpl
    def shoal_before_run(self, run: RunInfo) -> None:
        self.runs.append(run.run_id)


class AroundRuns:
    """A new-style wrapper around ``shoal_before_run``: sees each call before and after."""

    def __init__(self) -> None:
        self.events: list[str] = []

    @hookimpl(wrapper=True)
    def shoal_before_run(self, run: RunInfo) -> Iterator[None]:
        self.events.append(f"enter {run.run_id}")
        result = yield
        self.events.append(f"leave {run.run_id}")
        return result


class ExtraSerde:
    @hookimpl
    def shoal_model_serdes(self) -> list[ModelSerdeSpec]:
        return [ModelSerdeSpec(name="extra_serde", factory=dict)]


class HideExtraSerde:
    """A wrapper that filters what the other plugins contribute."""

    @hookimpl(wrapper=True)
    def shoal_model_serdes(self) -> Iterator[None]:
        results: list[Any] = yield
        return [[spec for spec in specs if spec.name != "extra_serde"] for specs in results]


def test_trace_plugins_logs_every_hook_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SHOAL_TRACE_PLUGINS", "1")
    seen = Seen()
    caplog.set_level(logging.DEBUG, logger="shoal.plugin_manager")
    with fresh_plugin_manager(plugins=[seen]):
        hooks.model_serdes()
        hooks.notify_before_run(RUN)
    traced = "\n".join(record.getMessage() for record in caplog.records)
    assert "shoal_model_serdes" in traced
    assert "shoal_before_run" in traced
    assert "r1" in traced  # the call's arguments are part of the trace
    assert seen.runs == ["r1"]


def test_without_trace_plugins_nothing_is_traced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SHOAL_TRACE_PLUGINS", raising=False)
    caplog.set_level(logging.DEBUG, logger="shoal.plugin_manager")
    with fresh_plugin_manager(plugins=[Seen()]):
        hooks.notify_before_run(RUN)
    assert "shoal_before_run" not in "\n".join(record.getMessage() for record in caplog.records)


def test_a_wrapper_wraps_a_lifecycle_hook() -> None:
    seen, around = Seen(), AroundRuns()
    with fresh_plugin_manager(plugins=[seen, around]):
        hooks.notify_before_run(RUN)
    assert seen.runs == ["r1"]
    assert around.events == ["enter r1", "leave r1"]


def test_a_wrapper_alone_still_runs() -> None:
    around = AroundRuns()
    with fresh_plugin_manager(plugins=[around]):
        hooks.notify_before_run(RUN)
    assert around.events == ["enter r1", "leave r1"]


def test_a_wrapper_can_filter_contributions() -> None:
    with fresh_plugin_manager(plugins=[ExtraSerde()]):
        assert "extra_serde" in hooks.model_serdes()
    with fresh_plugin_manager(plugins=[ExtraSerde(), HideExtraSerde()]):
        serdes = hooks.model_serdes()
    assert "extra_serde" not in serdes
    assert "pickle" in serdes  # the built-in serdes pass through the wrapper untouched


def test_a_failing_lifecycle_plugin_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        @hookimpl
        def shoal_before_run(self, run: RunInfo) -> None:
            raise RuntimeError("plugin bug")

    class SeenToo(Seen):  # plugins are named after their class: two of one class would clash
        pass

    first, second = Seen(), SeenToo()
    with fresh_plugin_manager(plugins=[first, Broken(), second]):
        hooks.notify_before_run(RUN)
    assert first.runs == ["r1"]
    assert second.runs == ["r1"]
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "shoal_before_run" in errors[0].getMessage()
    assert "raised; ignored" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert "plugin bug" in str(errors[0].exc_info[1])


def test_a_failing_contribution_plugin_is_named() -> None:
    class BrokenSerdes:
        @hookimpl
        def shoal_model_serdes(self) -> list[ModelSerdeSpec]:
            raise KeyError("no serde table")

    with fresh_plugin_manager(plugins=[BrokenSerdes()]), pytest.raises(PluginError) as caught:
        hooks.model_serdes()
    message = str(caught.value)
    assert "failed in shoal_model_serdes()" in message
    assert "BrokenSerdes" in message
    assert "no serde table" in message


class CountedSerdes:
    """Counts how often its contribution hook is called."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def shoal_model_serdes(self) -> list[ModelSerdeSpec]:
        self.calls += 1
        return [ModelSerdeSpec(name="counted_serde", factory=dict)]


def test_contributions_are_collected_once_until_a_plugin_comes_or_goes() -> None:
    counted = CountedSerdes()
    with fresh_plugin_manager(plugins=[counted]) as pm:
        for _ in range(3):
            assert "counted_serde" in hooks.model_serdes()
        assert hooks.get_model_serde("counted_serde").name == "counted_serde"
        assert counted.calls == 1, "collected once, then served from the manager"

        name = pm.register_plugin(ExtraSerde())
        assert "extra_serde" in hooks.model_serdes()
        assert counted.calls == 2, "a new plugin: collected again"

        assert name is not None
        pm.unregister_plugin(name)
        assert "extra_serde" not in hooks.model_serdes()
        assert counted.calls == 3, "a plugin gone: collected again"

        pm.block(name)  # blocking unregisters through pluggy, and forgets too
        hooks.model_serdes()
        assert counted.calls == 4
