"""Import a training framework in the background while the workers start.

Importing XGBoost or LightGBM takes about a second of CPU (measured: 1.3 s for xgboost on this
project's 2-core machine). The training driver needs it for the framework's rendezvous (XGBoost's
tracker) and every rank needs it to train; done in line, each waits for it in turn. Started in a
thread as soon as a process knows it will train, the import overlaps the placement of the workers,
the start of their processes and the shipping of their tasks. The process waits for it
(:meth:`Preload.wait`) before it unpickles or runs anything that imports the framework: two
threads importing one package at once can fail (seen: ``KeyError: 'xgboost'`` while unpickling a
callback defined next to ``import xgboost``). A module that fails to import here is ignored: the
backend's own import raises the error, where it belongs.

Runs on the training driver and in each training worker.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterable

#: how long a process waits for its background imports before importing in line itself
PRELOAD_TIMEOUT_S = 120.0


class Preload:
    """Imports running in a daemon thread; :meth:`wait` before importing them elsewhere."""

    def __init__(self, modules: Iterable[str]) -> None:
        self.modules = list(modules)
        self._thread: threading.Thread | None = None
        if self.modules:
            self._thread = threading.Thread(target=self._load, name="shoal-preload", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        for name in self.modules:
            with contextlib.suppress(Exception):
                importlib.import_module(name)

    def wait(self, timeout: float = PRELOAD_TIMEOUT_S) -> None:
        """Until the imports are done (or ``timeout`` passed: then the caller imports as usual)."""
        if self._thread is not None:
            self._thread.join(timeout)


def import_in_background(modules: Iterable[str]) -> Preload:
    """Start importing ``modules`` in a daemon thread."""
    return Preload(modules)
