"""The training controller without Ray: a scripted fake worker group and a fake clock.

Each test scripts what the ranks do over (fake) time and checks the decision and the error a
user sees: a clean run, a rank that raises, a rank that dies (and peers that break because of
it), a lost node, ranks that never show progress, progress that stops, a rank still running after
another finished, and the overall timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from shoal.errors import TrainingError
from shoal.train.control import (
    Deadlines,
    RankEvent,
    RankFailed,
    RankFinished,
    RankProgressed,
    TrainController,
    run_ranks,
)
from shoal.train.ranks import RankInfo, WorkerSlot

DEADLINES = Deadlines(hang_timeout_s=30, first_progress_s=100, timeout_s=None, root_cause_grace_s=2)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeGroup:
    """Ranks that do what ``script`` says: ``(at second, event)`` pairs, seconds from launch."""

    def __init__(self, clock: Clock, world: int, script: list[tuple[float, RankEvent]]) -> None:
        self.clock = clock
        self.script = sorted(script, key=lambda item: item[0])
        self.slots = [
            WorkerSlot(
                r,
                r % 2,
                r // 2,
                f"node{r // 2}abcdef",
                "127.0.0.1",
                4000 + r,
                (5000 + r,),
                f"/logs/rank{r}.log",
            )
            for r in range(world)
        ]
        self.launched_at: float | None = None
        self.launched: list[Any] = []
        self.diagnosed: list[int] = []

    def start(self) -> list[WorkerSlot]:
        return self.slots

    def launch(self, backend: Any, ranks: Sequence[RankInfo], tasks: Sequence[Any], setup: Any) -> None:
        self.launched_at = self.clock.now
        self.launched = list(tasks)

    def poll(self, timeout: float) -> list[RankEvent]:
        assert self.launched_at is not None, "poll before launch"
        self.clock.now += timeout
        due = [event for at, event in self.script if self.launched_at + at <= self.clock.now]
        self.script = [(at, event) for at, event in self.script if self.launched_at + at > self.clock.now]
        return due

    def diagnose(self, ranks: Sequence[int]) -> dict[int, str]:
        self.diagnosed.extend(ranks)
        return {rank: f"last line of rank {rank}\nwaiting in ray.get" for rank in ranks}

    def shutdown(self) -> None:
        pass


def run(
    world: int, script: list[tuple[float, RankEvent]], deadlines: Deadlines = DEADLINES
) -> tuple[Any, float]:
    """Run the loop to its end; (the results or the TrainingError raised, fake seconds it took)."""
    clock = Clock()
    group = FakeGroup(clock, world, script)
    start = clock.now
    try:
        result: Any = run_ranks(
            group,
            group.slots,
            None,
            [None] * world,
            [f"task{r}" for r in range(world)],
            None,
            deadlines,
            clock=clock,
        )
    except TrainingError as error:
        result = error
    return result, clock.now - start


def test_a_clean_run_returns_every_rank_result_in_rank_order() -> None:
    result, took = run(3, [(5, RankFinished(2, "c")), (6, RankFinished(0, "a")), (7, RankFinished(1, "b"))])
    assert result == ["a", "b", "c"]
    assert took == pytest.approx(7, abs=0.6)


def test_a_rank_that_raises_fails_the_run_with_its_exception_as_the_cause() -> None:
    boom = ValueError("bad column")
    result, took = run(2, [(3, RankFailed(1, died=False, detail="Traceback ... ValueError", cause=boom))])
    assert isinstance(result, TrainingError)
    assert result.rank == 1
    assert result.__cause__ is boom
    assert (
        "training worker rank 1 on node node0abc (127.0.0.1, pid 4001) failed: ValueError: bad column"
        in str(result)
    )
    assert "/logs/rank1.log" in str(result)
    assert took == pytest.approx(3 + DEADLINES.root_cause_grace_s, abs=0.6), "waits the grace for a death"


def test_a_death_is_the_root_cause_even_when_a_peer_broke_first() -> None:
    broken_pipe = RuntimeError("Connection closed by peer")
    result, _ = run(
        2,
        [
            (3.0, RankFailed(0, died=False, detail="gloo: connection closed", cause=broken_pipe)),
            (4.0, RankFailed(1, died=True, detail="The actor died unexpectedly")),
        ],
    )
    assert isinstance(result, TrainingError)
    assert result.rank == 1
    assert "training worker rank 1 on node node0abc (127.0.0.1, pid 4001) died" in str(result)
    assert "Ray says: The actor died unexpectedly" in str(result)
    assert result.log_path == "/logs/rank1.log"


def test_a_lost_node_reports_the_first_rank_that_died_on_it() -> None:
    result, took = run(
        4,
        [
            (10, RankFailed(2, died=True, detail="node died")),
            (10, RankFailed(3, died=True, detail="node died")),
        ],
    )
    assert isinstance(result, TrainingError)
    assert result.rank == 2
    assert result.node_id == "node1abcdef"
    assert took == pytest.approx(10, abs=0.6), "a death ends the run at once"


def test_ranks_that_never_show_progress_are_hung_after_the_first_progress_deadline() -> None:
    result, took = run(2, [])
    assert isinstance(result, TrainingError)
    message = str(result)
    assert "2 rank(s) taken as hung" in message
    assert (
        "- rank 0 on node node0abc (127.0.0.1, pid 4000): no sign of progress at all in the 100 s" in message
    )
    assert "- rank 1 on node node0abc (127.0.0.1, pid 4001): no sign of progress at all" in message
    assert "last line of rank 1" in message, "the group's diagnosis"
    assert "waiting in ray.get" in message
    assert "SHOAL_TRAIN_FIRST_PROGRESS_S" in message
    assert took == pytest.approx(100, abs=0.6)


def test_progress_that_stops_is_a_hang_after_hang_timeout() -> None:
    script: list[tuple[float, RankEvent]] = [
        (t, RankProgressed(r, int(t), f"boosting round {int(t)}")) for t in range(1, 11) for r in (0, 1)
    ]
    script += [(t, RankProgressed(0, int(t), f"boosting round {int(t)}")) for t in range(11, 80)]
    script += [(80, RankFinished(0, None))]
    result, took = run(2, script)
    assert isinstance(result, TrainingError)
    assert result.rank == 1
    assert "rank 1 on node node0abc (127.0.0.1, pid 4001): no sign of progress for 30 s" in str(result)
    assert "its last: boosting round 10, after 10 sign(s) of progress" in str(result)
    assert took == pytest.approx(10 + 30, abs=0.6)


def test_a_rank_still_running_after_another_finished_is_hung() -> None:
    result, took = run(
        2,
        [
            (1, RankProgressed(0, 1, "batch read")),
            (1, RankProgressed(1, 1, "batch read")),
            (5, RankFinished(0, "done")),
        ],
    )
    assert isinstance(result, TrainingError)
    assert "rank 1 on node node0abc (127.0.0.1, pid 4001): still running 30 s after rank 0 finished" in str(
        result
    )
    assert took == pytest.approx(5 + 30, abs=0.6)


def test_steady_progress_is_never_a_hang_however_long_training_takes() -> None:
    script: list[tuple[float, RankEvent]] = [
        (t, RankProgressed(r, t // 20, "epoch")) for t in range(20, 1000, 20) for r in (0, 1)
    ]
    script += [(1000, RankFinished(0, 0)), (1001, RankFinished(1, 1))]
    result, took = run(2, script)
    assert result == [0, 1]
    assert took == pytest.approx(1001, abs=0.6)


def test_the_overall_timeout_ends_a_run_that_still_makes_progress() -> None:
    script: list[tuple[float, RankEvent]] = [(t, RankProgressed(0, t, "epoch")) for t in range(1, 200)]
    deadlines = Deadlines(hang_timeout_s=1000, first_progress_s=1000, timeout_s=50)
    result, took = run(1, script, deadlines)
    assert isinstance(result, TrainingError)
    assert "training did not finish within 50 s" in str(result)
    assert took == pytest.approx(50, abs=0.6)


def test_progress_counts_that_do_not_grow_are_not_progress() -> None:
    controller = TrainController(1, DEADLINES, started_at=0.0)
    controller.observe(RankProgressed(0, 3, "round 3"), now=10.0)
    controller.observe(RankProgressed(0, 3, "round 3"), now=35.0)  # asked again: nothing new
    assert type(controller.decide(now=39.0)).__name__ == "Continue"
    decision = controller.decide(now=41.0)
    assert type(decision).__name__ == "Fail"
    assert decision.why[0].startswith("no sign of progress for 30 s")  # type: ignore[union-attr]


def test_deadlines_come_from_the_environment_and_bad_values_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shoal.errors import ConfigError
    from shoal.train.runner import deadlines_from_env

    monkeypatch.delenv("SHOAL_TRAIN_HANG_TIMEOUT_S", raising=False)
    monkeypatch.setenv("SHOAL_TRAIN_FIRST_PROGRESS_S", "45")
    assert deadlines_from_env() == Deadlines(hang_timeout_s=120, first_progress_s=45)
    assert deadlines_from_env(7).hang_timeout_s == 7, "an explicit hang_timeout_s wins"
    monkeypatch.setenv("SHOAL_TRAIN_HANG_TIMEOUT_S", "2m")
    with pytest.raises(ConfigError, match="SHOAL_TRAIN_HANG_TIMEOUT_S must be a number of seconds, got '2m'"):
        deadlines_from_env()
    monkeypatch.setenv("SHOAL_TRAIN_HANG_TIMEOUT_S", "10")
    monkeypatch.setenv("SHOAL_TRAIN_FIRST_PROGRESS_S", "0")
    with pytest.raises(ConfigError, match="SHOAL_TRAIN_FIRST_PROGRESS_S must be a positive number"):
        deadlines_from_env()


def test_only_a_death_restarts_training_and_only_max_failures_times() -> None:
    from shoal.train.control import RestartPolicy

    def error(kind: str) -> TrainingError:
        return TrainingError(f"rank 1 {kind}", rank=1, kind=kind)

    policy = RestartPolicy(max_failures=2)
    assert policy.restart(error("died"), failures=0)
    assert policy.restart(error("died"), failures=1)
    assert not policy.restart(error("died"), failures=2), "max_failures exhausted: the error is raised"
    for kind in ("failed", "hung", "timeout"):
        assert not policy.restart(error(kind), failures=0), f"a rank that {kind} would do it again"
    assert not RestartPolicy().restart(error("died"), failures=0), "no restart unless asked for"


def test_the_kind_of_a_training_error_survives_the_trip_back_from_a_job() -> None:
    import pickle

    cause = ValueError("lr=-1")
    error = TrainingError("rank 0 failed", rank=0, node_id="n", log_path="/l", kind="failed")
    error.__cause__ = cause
    back = pickle.loads(pickle.dumps(error))
    assert (back.kind, back.rank, back.node_id, back.log_path) == ("failed", 0, "n", "/l")
    assert isinstance(back.__cause__, ValueError)


def test_a_bad_max_failures_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from shoal.errors import ConfigError
    from shoal.train.runner import restart_policy_from_env

    monkeypatch.setenv("SHOAL_TRAIN_MAX_FAILURES", "2")
    assert restart_policy_from_env().max_failures == 2
    for bad in ("-1", "two", "1.5"):
        monkeypatch.setenv("SHOAL_TRAIN_MAX_FAILURES", bad)
        with pytest.raises(ConfigError, match="SHOAL_TRAIN_MAX_FAILURES must be a whole number"):
            restart_policy_from_env()
