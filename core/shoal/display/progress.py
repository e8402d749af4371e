"""Progress while the driver waits (a DPF or many-model run, a job, a pool starting), shown the
way its surface (:mod:`shoal.display.surface`) can show it:

* a Jupyter kernel with ipywidgets: a widget bar with a line of text beside it;
* a Jupyter kernel without ipywidgets: a plain-text bar that updates in place (one output,
  rewritten through its display id; no warning asks for ipywidgets);
* a terminal: rich's bar on standard error (standard output carries data, ``--format json``);
* anything else (a log file, a pipe): a logged line (INFO, ``shoal.progress``) every
  :data:`LOG_EVERY_S` s and one at the end, never a bar.

Every display takes ``update(completed, total, detail)`` and ends with ``close(ok)``. Runs on
the driver.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any

from shoal.display.surface import Surface, current_surface

log = logging.getLogger("shoal.progress")

#: how often a log surface gets a line
LOG_EVERY_S = 5.0
#: how often a notebook's text bar is rewritten (the last state is always shown)
TEXT_EVERY_S = 0.5
BAR_WIDTH = 30


def percent(completed: int, total: int | None) -> int | None:
    """``completed`` of ``total`` in whole percent (None when the total is not known yet)."""
    if not total:
        return None
    return min(100, int(100 * completed / total))


def text_line(description: str, completed: int, total: int | None, detail: str, elapsed_s: float) -> str:
    """One line of a text bar: ``DPF r1 [######------] 20/40  50%  done=18 failed=2  0:12``."""
    share = percent(completed, total)
    filled = 0 if share is None else BAR_WIDTH * share // 100
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    count = f"{completed}/{total if total else '?'}"
    minutes, seconds = divmod(int(elapsed_s), 60)
    parts = [
        description,
        f"[{bar}]",
        count,
        f"{share}%" if share is not None else "",
        detail,
        f"{minutes}:{seconds:02d}",
    ]
    return "  ".join(part for part in parts if part)


class ProgressDisplay(ABC):
    """The base of the displays: what they were last told, and ``with`` support."""

    def __init__(self, description: str, unit: str) -> None:
        self.description = description
        self.unit = unit
        self.completed = 0
        self.total: int | None = None
        self.detail = ""
        self.started = time.monotonic()
        self.closed = False

    def update(self, completed: int, total: int | None = None, detail: str = "") -> None:
        self.completed, self.total, self.detail = completed, total, detail
        self._show(final=False)

    def close(self, ok: bool | None = None) -> None:
        """End the display; ``ok`` colours a widget bar (True green, False red)."""
        if self.closed:
            return
        self.closed = True
        self._show(final=True)
        self._end(ok)

    def line(self) -> str:
        return text_line(
            self.description, self.completed, self.total, self.detail, time.monotonic() - self.started
        )

    @abstractmethod
    def _show(self, final: bool) -> None:
        """Show the current state (``final``: the last time, whatever the pace)."""

    def _end(self, ok: bool | None) -> None:  # noqa: B027 - optional hook, default is a no-op
        """Anything to do after the last show."""

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(ok=None if kind is None else False)


class TerminalBar(ProgressDisplay):
    """rich's live bar on standard error."""

    def __init__(self, description: str, unit: str) -> None:
        super().__init__(description, unit)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            transient=False,
            console=Console(stderr=True),
        )
        self.task = self.progress.add_task(description, total=None, detail="")
        self.progress.start()

    def _show(self, final: bool) -> None:
        self.progress.update(
            self.task, total=self.total or None, completed=self.completed, detail=self.detail
        )

    def _end(self, ok: bool | None) -> None:
        self.progress.stop()


class LogLines(ProgressDisplay):
    """A line every :data:`LOG_EVERY_S` s, and one at the end, logged (INFO, logger
    ``shoal.progress``): the library logs, it never prints; the CLI shows shoal's INFO lines on
    standard error, and a script sends them where its logging goes."""

    def __init__(self, description: str, unit: str) -> None:
        super().__init__(description, unit)
        self.last_line_at = -LOG_EVERY_S

    def _show(self, final: bool) -> None:
        now = time.monotonic()
        if final or now - self.last_line_at >= LOG_EVERY_S:
            self.last_line_at = now
            log.info("%s", self.line())


class _PlainText:
    """An object a notebook shows as plain text (its ``__repr__``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class NotebookTextBar(ProgressDisplay):
    """A text bar in one notebook output, rewritten in place through its display id."""

    def __init__(self, description: str, unit: str) -> None:
        super().__init__(description, unit)
        from IPython.display import display

        self.handle: Any = display(_PlainText(self.line()), display_id=True)
        self.shown_at = time.monotonic()

    def _show(self, final: bool) -> None:
        now = time.monotonic()
        if final or now - self.shown_at >= TEXT_EVERY_S:
            self.shown_at = now
            self.handle.update(_PlainText(self.line()))


class WidgetBar(ProgressDisplay):
    """An ipywidgets bar with the text line beside it."""

    def __init__(self, description: str, unit: str) -> None:
        super().__init__(description, unit)
        import ipywidgets
        from IPython.display import display

        self.bar = ipywidgets.IntProgress(value=0, min=0, max=1, description="")
        self.label = ipywidgets.Label(value=self.line())
        self.box = ipywidgets.HBox([self.bar, self.label])
        display(self.box)

    def _show(self, final: bool) -> None:
        total = self.total or max(1, self.completed)
        self.bar.max = total
        self.bar.value = min(self.completed, total)
        self.label.value = self.line()

    def _end(self, ok: bool | None) -> None:
        if ok is not None:
            self.bar.bar_style = "success" if ok else "danger"


DISPLAYS: dict[Surface, type[ProgressDisplay]] = {
    Surface.WIDGETS: WidgetBar,
    Surface.NOTEBOOK_TEXT: NotebookTextBar,
    Surface.TERMINAL: TerminalBar,
    Surface.LOG: LogLines,
}


def open_progress(description: str, *, unit: str = "", surface: Surface | None = None) -> ProgressDisplay:
    """A progress display for this process's surface (or ``surface``)."""
    return DISPLAYS[surface or current_surface()](description, unit)
