"""Progress on stderr for long library work.

The library emits event dicts: ``{"phase": "unlearn", "epoch": 3, "epochs": 20, ...}`` (one
per epoch), ``{"phase": "verify", "done": 64, "total": 600}`` (one per batch) and
``{"phase": "import", "message": ...}`` (a step starts). On a terminal each step becomes a
spinner with its elapsed time and each epoch loop or verification pass a Rich progress bar
with an ETA; otherwise (a log file, CI) one plain line per step, epoch and finished pass.
``--quiet`` silences all of it. Nothing goes to stdout, so ``--json`` output stays clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from ulrl_edge.cli.common import SETTINGS, stderr_console

Event = dict[str, Any]

_PHASE_NAMES = {
    "unlearn": "unlearning",
    "relearn": "relearning",
    "refit": "refitting the reset rows",
    "anchor": "weighing weights for the anchor",
    "finetune": "fine-tuning",
    "prune": "pruning",
    "recover": "recovering masks",
    "probe": "probing classes",
    "verify": "verifying",
}


def _metrics_text(event: Event) -> str:
    parts = []
    for key in ("loss", "acc", "lr"):
        value = event.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{key} {value:.4g}")
    return " ".join(parts)


def _bar_name(event: Event) -> str:
    phase = str(event.get("phase", "work"))
    name = _PHASE_NAMES.get(phase, phase)
    if "run" in event:
        return f"{name} (run {event['run']})"
    if "seed" in event and phase == "unlearn":  # several unlearning runs, one seed each
        return f"{name} (seed {event['seed']})"
    return name


def _counts(event: Event) -> tuple[Any, Any]:
    """(done, total) of an epoch or batch event; (None, None) for other events."""
    if "epoch" in event:
        return event["epoch"], event.get("epochs")
    if "done" in event:
        return event["done"], event.get("total")
    return None, None


def _plain_printer(console: Console) -> Callable[[Event], None]:
    def plain(event: Event) -> None:
        if "message" in event:
            console.print(f"· {event['message']}", markup=False)
            return
        done, total = _counts(event)
        if done is None:
            return
        if "epoch" in event:
            console.print(
                f"  {_bar_name(event)} epoch {done}/{total or '?'} {_metrics_text(event)}",
                markup=False,
            )
        elif total and done >= total:  # batches: one line per finished pass
            console.print(f"  {_bar_name(event)} {done}/{total}", markup=False)

    return plain


def _bars_only(column):
    """Wrap a Rich column so that it stays blank on step rows (which have no count)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class BarsOnly(ProgressColumn):
        def render(self, task):
            return Text("") if task.fields.get("step") else column.render(task)

    return BarsOnly()


class _Bars:
    """Turns events into Rich tasks: one spinner per step, one bar per loop or pass."""

    def __init__(self, bars) -> None:
        self.bars = bars
        self.step: int | None = None  # the spinner of the step now running
        self.bar: int | None = None  # the bar now advancing
        self.bar_key: str | None = None
        self.bar_done = 0

    def _finish_step(self) -> None:
        if self.step is not None:
            self.bars.update(self.step, total=1, completed=1)
            self.step = None

    def _finish_bar(self) -> None:
        if self.bar is None:
            return
        task = next(t for t in self.bars.tasks if t.id == self.bar)
        if task.total is not None and task.completed < task.total:  # e.g. early stop
            stopped = f"{task.description} (stopped at {task.completed:g} of {task.total:g})"
            self.bars.update(self.bar, total=task.completed, description=stopped)
        self.bar = self.bar_key = None

    def __call__(self, event: Event) -> None:
        if "message" in event:
            self._finish_step()
            self._finish_bar()
            self.step = self.bars.add_task(str(event["message"]), total=None, info="", step=True)
            return
        done, total = _counts(event)
        if done is None:
            return
        self._finish_step()
        key = f"{event.get('phase')}:{event.get('run', event.get('seed', ''))}"
        if key != self.bar_key or done < self.bar_done:  # a new loop, or the next pass
            self._finish_bar()
            self.bar = self.bars.add_task(_bar_name(event), total=total, info="", step=False)
            self.bar_key = key
        self.bar_done = done
        self.bars.update(self.bar, completed=done, total=total, info=_metrics_text(event))

    def close(self) -> None:
        self._finish_step()
        self._finish_bar()


@contextmanager
def progress_printer(console: Console | None = None) -> Iterator[Callable[[Event], None]]:
    """Yield a callback for library progress events: bars on a terminal, lines otherwise.

    Args:
        console: Where to draw (default: stderr, colours off for ``NO_COLOR`` or no TTY).
    """
    if SETTINGS.quiet:
        yield lambda event: None
        return
    console = console or stderr_console()
    if not console.is_terminal:
        yield _plain_printer(console)
        return

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description}", markup=False),
        _bars_only(BarColumn()),
        _bars_only(MofNCompleteColumn()),
        TimeElapsedColumn(),
        _bars_only(TextColumn("ETA")),
        _bars_only(TimeRemainingColumn()),
        TextColumn("{task.fields[info]}", markup=False),
        console=console,
        transient=False,
    ) as bars:
        tracker = _Bars(bars)
        try:
            yield tracker
        finally:
            tracker.close()


@contextmanager
def progress_step(message: str) -> Iterator[None]:
    """Show ``message`` as a running step (spinner and elapsed time) for work with no events,
    such as a TensorRT engine build."""
    with progress_printer() as progress:
        progress({"phase": "step", "message": message})
        yield
