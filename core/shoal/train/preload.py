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

A backend can name optional packages its framework imports when they are installed but training
never uses (``EstimatorBackend.worker_imports_hidden``): scikit-learn, which xgboost and lightgbm
import for their scikit-learn-style classes, is 0.9 s of the 1.1-1.3 s that importing either takes
on this project's 2-core machine. The preload imports the framework with those packages hidden
(``sys.modules[name] = None``, which the frameworks take as "not installed") and unhides them at
once: code in the worker can still import them, but the framework's scikit-learn-style classes
(``xgboost.XGBRegressor``, ``lightgbm.LGBMRegressor``) are its fallbacks without scikit-learn in
that process. A package already imported is not hidden.

Runs on the training driver and in each training worker.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from collections.abc import Iterable, Iterator

#: how long a process waits for its background imports before importing in line itself
PRELOAD_TIMEOUT_S = 120.0


class Preload:
    """Imports running in a daemon thread; :meth:`wait` before importing them elsewhere."""

    def __init__(self, modules: Iterable[str], hidden: Iterable[str] = ()) -> None:
        self.modules = list(modules)
        self.hidden = list(hidden)
        self._thread: threading.Thread | None = None
        if self.modules:
            self._thread = threading.Thread(target=self._load, name="shoal-preload", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        with hidden_packages(self.hidden):
            for name in self.modules:
                with contextlib.suppress(Exception):
                    importlib.import_module(name)

    def wait(self, timeout: float = PRELOAD_TIMEOUT_S) -> None:
        """Until the imports are done (or ``timeout`` passed: then the caller imports as usual)."""
        if self._thread is not None:
            self._thread.join(timeout)


@contextlib.contextmanager
def hidden_packages(names: Iterable[str]) -> Iterator[None]:
    """While inside, ``import name`` raises ImportError for each of ``names`` not yet imported."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def import_in_background(modules: Iterable[str], hidden: Iterable[str] = ()) -> Preload:
    """Start importing ``modules`` in a daemon thread, with the packages ``hidden`` hidden."""
    return Preload(modules, hidden)
