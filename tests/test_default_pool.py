"""Which pool runs when none is named: ``set_default_compute_pool`` wins over
``SHOAL_COMPUTE_POOL``, and without either a local ``DEFAULT`` pool is created, suspended, on
first use (README.md, ``shoal.pools.default``). No Ray: a suspended pool starts no node."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import shoal
from shoal.pools.default import DEFAULT_POOL, default_compute_pool


@pytest.fixture(autouse=True)
def _no_choice_left() -> Iterator[None]:
    shoal.set_default_compute_pool(None)
    yield
    shoal.set_default_compute_pool(None)


def test_the_program_s_choice_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_COMPUTE_POOL", "from_env")
    assert default_compute_pool() == "FROM_ENV"
    shoal.set_default_compute_pool("chosen")
    assert default_compute_pool() == "CHOSEN"
    shoal.set_default_compute_pool(None)
    assert default_compute_pool() == "FROM_ENV", "None hands the choice back to the environment"
    assert [p["name"] for p in shoal.list_compute_pools()] == [], "naming a pool creates nothing"


def test_without_a_choice_a_suspended_default_pool_is_created_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SHOAL_COMPUTE_POOL", raising=False)
    with caplog.at_level(logging.INFO, logger="shoal"):
        assert default_compute_pool() == DEFAULT_POOL
        assert default_compute_pool() == DEFAULT_POOL
    said = [r for r in caplog.records if r.name.startswith("shoal") and "DEFAULT" in r.getMessage()]
    assert len(said) == 1, "said once, when created"
    assert said[0].levelno == logging.WARNING, "shown on stderr even where logging is not set up"
    assert "shoal pool stop DEFAULT" in said[0].getMessage()
    assert capsys.readouterr() == ("", ""), "through logging, never printed"
    described = shoal.describe_compute_pool(DEFAULT_POOL)
    assert described["state"] == "SUSPENDED"
    assert described["active_nodes"] == 0
    assert described["min_nodes"] == 1
    assert 2 <= described["max_nodes"] <= 4
    assert default_compute_pool() == DEFAULT_POOL
    assert [p["name"] for p in shoal.list_compute_pools()] == [DEFAULT_POOL], "created once"
