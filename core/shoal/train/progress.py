"""Signs of progress of a training rank, as its backend sees them.

A backend (or shoal's own code on the rank) calls :func:`report_progress` when real work was
done: a boosting round finished, a batch was read from the rank's shard, a metric was reported, a
line was written to the rank's output. The worker process hands each report to the sink its
runtime installed (:func:`set_progress_sink`); the driver's training controller reads the count
and takes a rank with no new progress for too long as hung (:mod:`shoal.train.control`).

Outside a training worker no sink is installed and a report costs one ``None`` check.

Runs on training workers (reports) and is installed by ``shoal.runtime.train_worker``.
"""

from __future__ import annotations

from collections.abc import Callable

_sink: dict[str, Callable[[str], None] | None] = {"sink": None}


def set_progress_sink(sink: Callable[[str], None] | None) -> None:
    """Worker side: where this process's reports go while it trains (None: nowhere)."""
    _sink["sink"] = sink


def report_progress(what: str = "step") -> None:
    """Say that this rank just did real work; ``what`` names it (``"round 12"``, ``"batch"``)."""
    sink = _sink["sink"]
    if sink is not None:
        sink(what)
