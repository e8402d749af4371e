"""The live pages' hub (``shoal.ui.live``) with a fake reader: one read per poll for all watchers."""

from __future__ import annotations

import asyncio
from typing import Any

from shoal.ui.live import Final, Hub

POLL_S = 0.01


class Record:
    """A record that changes when told to, and counts how often it is read."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0

    def read(self) -> dict[str, Any]:
        self.reads += 1
        return {"count": str(self.value)}


async def collect(hub: Hub, key: str, record: Record, into: list[Any]) -> None:
    """Watch until cancelled (as a server's stream is, when its browser goes away)."""
    async for snapshot in hub.watch(key, record.read):
        into.append(snapshot)


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def watch_for(
    watchers: int, seconds: float, change_every: float | None = None
) -> tuple[Record, list[list[Any]]]:
    hub, record = Hub(POLL_S), Record()
    seen: list[list[Any]] = [[] for _ in range(watchers)]
    tasks = [asyncio.create_task(collect(hub, "run", record, seen[i])) for i in range(watchers)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        await asyncio.sleep(change_every or seconds)
        if change_every:
            record.value += 1
    await stop(tasks)
    assert hub.subjects == {}, "the subject outlived its last watcher"
    return record, seen


def test_twenty_watchers_cost_the_reads_of_one() -> None:
    one, _ = asyncio.run(watch_for(1, 0.3))
    twenty, seen = asyncio.run(watch_for(20, 0.3))
    print(f"reads in 0.3 s: 1 watcher {one.reads}, 20 watchers {twenty.reads}")
    assert 0 < twenty.reads <= one.reads * 1.5 + 3
    assert all(s == [{"count": "0"}] for s in seen), "an unchanged record was sent more than once"


def test_every_watcher_gets_each_change_once_in_order() -> None:
    record, seen = asyncio.run(watch_for(3, 0.5, change_every=0.1))
    assert record.value >= 3
    for snapshots in seen:
        counts = [int(s["count"]) for s in snapshots]
        assert counts == sorted(set(counts)), counts  # no repeats, never backwards
        assert counts[0] == 0
        assert counts[-1] >= record.value - 1


def test_reading_stops_when_the_last_watcher_leaves() -> None:
    async def scenario() -> tuple[int, int]:
        record, hub = Record(), Hub(POLL_S)
        task = asyncio.create_task(collect(hub, "job", record, []))
        await asyncio.sleep(0.1)
        await stop([task])
        after_leaving = record.reads
        await asyncio.sleep(0.1)
        return after_leaving, record.reads

    left_at, later = asyncio.run(scenario())
    assert left_at > 0
    assert later == left_at


def test_a_read_that_fails_is_a_snapshot_with_the_error() -> None:
    async def scenario() -> Any:
        def broken() -> Any:
            raise LookupError("no run 'r1'")

        stream = Hub(POLL_S).watch("run", broken)
        first = await asyncio.wait_for(anext(stream), timeout=5)
        await stream.aclose()
        return first

    assert asyncio.run(scenario()) == {"error": "LookupError: no run 'r1'"}


def test_stats_show_each_subject_with_its_watchers_and_reads() -> None:
    async def scenario() -> list[dict[str, Any]]:
        hub, record = Hub(POLL_S), Record()
        tasks = [asyncio.create_task(collect(hub, "pool", record, [])) for _ in range(4)]
        await asyncio.sleep(0.1)
        stats = hub.stats()
        await stop(tasks)
        return stats

    (only,) = asyncio.run(scenario())
    assert only["key"] == "pool"
    assert only["watchers"] == 4
    assert only["version"] == 1
    assert only["reads"] >= 2


def test_a_watcher_gets_none_as_a_heartbeat_while_nothing_changes() -> None:
    async def scenario() -> list[Any]:
        record, got = Record(), []
        stream = Hub(POLL_S).watch("job", record.read, heartbeat_s=0.05)
        for _ in range(3):
            got.append(await anext(stream))
        record.value = 1
        for _ in range(100):  # a heartbeat or two may come first
            got.append(await anext(stream))
            if got[-1] == {"count": "1"}:
                break
        await stream.aclose()
        return got

    got = asyncio.run(scenario())
    assert got[0] == {"count": "0"}
    assert got[1:3] == [None, None]
    assert got[-1] == {"count": "1"}


def test_a_final_snapshot_is_sent_and_then_nothing_is_read() -> None:
    async def scenario() -> tuple[list[Any], int, list[dict[str, Any]]]:
        hub, reads, got = Hub(POLL_S), [], []

        def read() -> Any:
            reads.append(1)
            return Final({"status": "DONE"}) if len(reads) >= 2 else {"status": "RUNNING"}

        stream = hub.watch("job", read, heartbeat_s=0.05)
        for _ in range(6):  # two snapshots, then heartbeats only
            got.append(await anext(stream))
        stats = hub.stats()
        await stream.aclose()
        return got, len(reads), stats

    got, reads, stats = asyncio.run(scenario())
    assert got[:2] == [{"status": "RUNNING"}, {"status": "DONE"}]
    assert got[2:] == [None] * 4
    assert reads == 2
    assert stats[0]["final"] is True
