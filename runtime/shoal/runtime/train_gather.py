"""The Ray side of :func:`shoal.train.gather.all_gather`: a board actor per worker group.

:class:`GatherBoard` (an actor with no CPU, named after the group) keeps, for each gather round,
the value each rank posted. The first rank that gathers starts it (:func:`board_of`, Ray's
``get_if_exists``), so a training that never gathers (XGBoost, torch) starts no process for it;
it belongs to that rank and ends with it when the group's workers are stopped. A rank posts its
value, then asks for the round's values until every rank posted, or fails when the deadline
passes, naming the ranks that did not post (a rank that died is reported by the group as dead in
the meantime).

Runs on the training workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import cloudpickle

from shoal.errors import TrainingError

POLL_S = 0.05


class GatherBoard:
    """Ray actor body: the values of each gather round, by rank."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self.rounds: dict[int, dict[int, bytes]] = {}

    def post(self, round_index: int, rank: int, blob: bytes) -> None:
        self.rounds.setdefault(round_index, {})[rank] = blob

    def collect(self, round_index: int) -> list[bytes] | list[int]:
        """Every rank's value in rank order, or (not all there yet) the ranks that posted."""
        posted = self.rounds.get(round_index, {})
        if len(posted) < self.world_size:
            return sorted(posted)
        return [posted[rank] for rank in range(self.world_size)]


def board_of(group_id: str, world_size: int) -> Any:
    """The group's board, started by the first rank that asks."""
    import ray

    board: Any = ray.remote(GatherBoard)
    return board.options(name=f"{group_id}-gather", get_if_exists=True, num_cpus=0).remote(world_size)


class RankGatherer:
    """A rank's side: the ``gatherer`` :func:`shoal.train.gather.set_gatherer` installs."""

    def __init__(
        self,
        board: Callable[[], Any],
        rank: int,
        world_size: int,
        *,
        get: Callable[[Any], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._board_of, self.rank, self.world_size = board, rank, world_size  # board(): the handle
        self._board: Any = None
        self.rounds = 0
        self._get, self._clock, self._sleep = get, clock, sleep  # Ray's, unless a test fakes them

    def _answer(self, ref: Any) -> Any:
        if self._get is not None:
            return self._get(ref)
        import ray

        return ray.get(ref)

    def __call__(self, value: Any, timeout_s: float) -> list[Any]:
        round_index, self.rounds = self.rounds, self.rounds + 1
        if self._board is None:
            self._board = self._board_of()
        self._answer(self._board.post.remote(round_index, self.rank, cloudpickle.dumps(value)))
        deadline = self._clock() + timeout_s
        while True:
            answer = self._answer(self._board.collect.remote(round_index))
            if answer and isinstance(answer[0], bytes):
                return [cloudpickle.loads(blob) for blob in answer]
            if self._clock() >= deadline:
                missing = sorted(set(range(self.world_size)) - set(answer))
                raise TrainingError(
                    f"rank {self.rank} waited {timeout_s:g} s in gather round {round_index} for "
                    f"rank(s) {missing}, which never posted their value"
                )
            self._sleep(POLL_S)
