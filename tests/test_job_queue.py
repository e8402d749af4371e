"""A pool's job queue without Ray: FIFO by submission time, one reservation at a time, cancel of
queued, reserving and running jobs, a reservation that fails."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from shoal.jobs.queue import JobQueue, service_name


@dataclass
class FakeJob:
    name: str
    log: list[str]
    reserve_ok: bool = True
    gate: threading.Event | None = None  # reserve() waits for it
    cancelled: bool = False
    ran: threading.Event = field(default_factory=threading.Event)

    def reserve(self) -> bool:
        self.log.append(f"reserve {self.name}")
        if self.gate is not None:
            self.gate.wait(5)
        return self.reserve_ok and not self.cancelled

    def execute(self) -> object:
        self.log.append(f"run {self.name}")
        self.ran.set()
        return None

    def cancel(self) -> str:
        self.cancelled = True
        self.log.append(f"cancel {self.name}")
        return "CANCELLING"

    def abandon(self, reason: str) -> str:
        self.cancelled = True
        self.log.append(f"abandon {self.name}: {reason}")
        return "INTERNAL_ERROR"


def inline(target: Callable[[], None], name: str) -> None:
    target()


def test_jobs_start_in_submission_order_whatever_order_they_arrive_in() -> None:
    log: list[str] = []
    queue: JobQueue[FakeJob] = JobQueue(start_thread=inline)
    for name, submitted in (("c", 3.0), ("a", 1.0), ("b", 2.0)):
        queue.submit(FakeJob(name, log), submitted)
    assert queue.names() == ["a", "b", "c"]
    while queue.step(timeout=0):
        pass
    assert queue.started_order == ["a", "b", "c"]
    assert log == ["reserve a", "run a", "reserve b", "run b", "reserve c", "run c"]
    assert not queue.knows("a"), "finished jobs leave the queue"


def test_only_the_head_reserves_while_the_others_wait() -> None:
    log: list[str] = []
    gate = threading.Event()
    queue: JobQueue[FakeJob] = JobQueue(start_thread=inline)
    queue.submit(FakeJob("first", log, gate=gate), 1.0)
    queue.submit(FakeJob("second", log), 2.0)
    worker = threading.Thread(target=queue.step)
    worker.start()
    worker.join(0.2)
    assert log == ["reserve first"], "the second job does not ask for nodes while the first waits"
    assert queue.knows("second")
    gate.set()
    worker.join(5)
    queue.step(timeout=0)
    assert queue.started_order == ["first", "second"]


def test_cancel_a_queued_job_ends_it_at_once_and_the_head_on_its_reservation() -> None:
    log: list[str] = []
    gate = threading.Event()
    queue: JobQueue[FakeJob] = JobQueue(start_thread=inline)
    head = FakeJob("head", log, gate=gate)
    queue.submit(head, 1.0)
    queue.submit(FakeJob("queued", log), 2.0)
    queue.submit(FakeJob("last", log), 3.0)
    worker = threading.Thread(target=queue.step)
    worker.start()
    worker.join(0.1)
    assert queue.cancel("queued") == "CANCELLING"
    assert "cancel queued" in log
    assert "reserve queued" in log, "a cancelled job's reserve() runs at once and ends it"
    assert queue.names() == ["head", "last"]
    assert queue.cancel("head") == "CANCELLING"
    gate.set()
    worker.join(5)
    assert not head.ran.is_set()
    queue.step(timeout=0)
    assert queue.started_order == ["last"]
    assert queue.cancel("nobody") is None


def test_a_failed_reservation_moves_on_to_the_next_job() -> None:
    log: list[str] = []
    queue: JobQueue[FakeJob] = JobQueue(start_thread=inline)
    queue.submit(FakeJob("unlucky", log, reserve_ok=False), 1.0)
    queue.submit(FakeJob("next", log), 2.0)
    while queue.step(timeout=0):
        pass
    assert queue.started_order == ["next"]


def test_running_jobs_are_known_and_cancellable() -> None:
    log: list[str] = []
    started: list[Callable[[], None]] = []
    queue: JobQueue[FakeJob] = JobQueue(start_thread=lambda target, name: started.append(target))
    queue.submit(FakeJob("long", log), 1.0)
    queue.step(timeout=0)
    assert queue.knows("long")
    assert queue.cancel("long") == "CANCELLING"
    started[0]()
    assert not queue.knows("long")


def test_a_stopping_pool_ends_every_queued_reserving_and_running_job() -> None:
    log: list[str] = []
    started: list[Callable[[], None]] = []
    queue: JobQueue[FakeJob] = JobQueue(start_thread=lambda target, name: started.append(target))
    queue.submit(FakeJob("running", log), 1.0)
    queue.step(timeout=0)
    gate = threading.Event()
    head = FakeJob("reserving", log, gate=gate)
    queue.submit(head, 2.0)
    queue.submit(FakeJob("queued", log), 3.0)
    worker = threading.Thread(target=queue.step)
    worker.start()
    worker.join(0.1)
    assert queue.abandon_all("pool stopped") == ["reserving", "queued", "running"]
    assert {"abandon running: pool stopped", "abandon reserving: pool stopped"} <= set(log)
    assert log.count("reserve queued") == 1, "a queued job's reserve() runs at once and ends it"
    gate.set()
    worker.join(5)
    assert not head.ran.is_set(), "the job that was reserving never starts"
    assert queue.names() == []
    assert queue.started_order == ["running"]


def test_the_service_has_a_name_per_pool() -> None:
    assert service_name("DEFAULT") == "shoal-pool-DEFAULT"
