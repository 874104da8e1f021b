"""Progress on stderr for long library work.

The library emits event dicts (``{"phase": "unlearn", "epoch": 3, "epochs": 20, ...}``,
``{"phase": "verify", "done": 64, "total": 600}``, ``{"phase": "load", "message": ...}``);
this turns them into Rich progress bars on a terminal and one line per epoch otherwise.
Nothing goes to stdout, so ``--json`` output stays clean.
"""

from __future__ import annotations

from contextlib import contextmanager

from ulrl_edge.cli.common import SETTINGS, stderr_console

_PHASE_NAMES = {
    "unlearn": "unlearning",
    "relearn": "relearning",
    "finetune": "fine-tuning",
    "verify": "verifying",
}


def _metrics_text(event: dict) -> str:
    parts = []
    for key in ("loss", "acc", "lr"):
        value = event.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{key} {value:.4g}")
    return " ".join(parts)


@contextmanager
def progress_printer():
    """Yield a callback for library progress events; bars on a TTY, lines otherwise."""
    console = stderr_console()
    if SETTINGS.quiet:
        yield lambda event: None
        return
    if not console.is_terminal:
        def plain(event: dict) -> None:
            if "message" in event:
                console.print(f"· {event['message']}")
            elif "epoch" in event:
                name = _PHASE_NAMES.get(event.get("phase"), event.get("phase"))
                run = f" run {event['run']}" if "run" in event else ""
                console.print(
                    f"  {name}{run} epoch {event['epoch']}/{event.get('epochs', '?')} "
                    f"{_metrics_text(event)}"
                )
        yield plain
        return

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=False,
    ) as bars:
        tasks: dict[str, int] = {}

        def fancy(event: dict) -> None:
            if "message" in event:
                console.print(f"· {event['message']}")
                return
            phase = str(event.get("phase", "work"))
            key = f"{phase}{event.get('run', '')}"
            total = event.get("epochs", event.get("total"))
            done = event.get("epoch", event.get("done"))
            if key not in tasks:
                name = _PHASE_NAMES.get(phase, phase)
                if "run" in event:
                    name = f"{name} (run {event['run']})"
                tasks[key] = bars.add_task(name, total=total, info="")
            bars.update(tasks[key], completed=done, total=total, info=_metrics_text(event))

        yield fancy
