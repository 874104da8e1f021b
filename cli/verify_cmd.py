"""``ulrl-edge verify MODEL --data SRC [--trigger SPEC --target K] [--json]``."""

from __future__ import annotations

import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from ulrl_edge.cli.common import SETTINGS, command_boundary, emit_json, stderr_console
from ulrl_edge.cli.main import app
from ulrl_edge.cli.options import PreprocessFlags, preprocess_options


class Runtime(str, Enum):
    ort_cpu = "ort-cpu"
    ort_cuda = "ort-cuda"
    ort_trt = "ort-trt"
    tensorrt = "tensorrt"


class Mode(str, Enum):
    all2one = "all2one"
    all2all = "all2all"


def _rate_line(label: str, rate: float, hits: int, n: int, ci: tuple[float, float], what: str):
    return f"{label}  {rate:.4f}  ({hits}/{n} {what}, 95% CI {ci[0]:.4f}–{ci[1]:.4f})"


@app.command("verify", rich_help_panel="Check")
@preprocess_options
def verify(
    model: Path = typer.Argument(..., help="The ONNX model to measure.", show_default=False),
    data: Path = typer.Option(
        ..., "--data", "-d", help="Clean labelled images: a class-folder tree or an .npz."
    ),
    trigger: str = typer.Option(
        None, "--trigger", help="Known trigger for the ASR, e.g. badnets:size=3,pos=br."
    ),
    target: int = typer.Option(None, "--target", help="The attack's target class (all2one)."),
    mode: Mode = typer.Option(Mode.all2one, "--mode", help="Attack mapping for the ASR."),
    runtime: Runtime = typer.Option(
        Runtime.ort_cpu, "--runtime",
        help="onnxruntime execution provider, or tensorrt to run a TensorRT engine file."
    ),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per batch."),
    report: Path = typer.Option(
        None, "--report", help="Folder for report.json and report.html.", show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    *,
    preprocess: PreprocessFlags,
) -> None:
    """Measure clean accuracy (ACC) and attack success rate (ASR) with onnxruntime.

    ACC: top-1 accuracy on every image of --data.

    ASR (with --trigger): share of triggered non-target images classified as the target.

    Both are printed with the image count and a 95% Wilson confidence interval.
    """
    with command_boundary("verify"):
        from ulrl_edge.data import load_images, parse_trigger
        from ulrl_edge.errors import BadInput, UsageError
        from ulrl_edge.onnx_io.load import load_model
        from ulrl_edge.verify import evaluate
        from ulrl_edge.verify.runners import open_runner

        parsed = parse_trigger(trigger) if trigger is not None else None
        if parsed is None and target is not None:
            raise UsageError("--target is only used with --trigger")
        if parsed is not None and mode is Mode.all2one and target is None:
            raise BadInput("--trigger needs --target K, the class the attack aims at")
        # An engine is not an ONNX file; every ONNX model gets the size and external-data checks.
        sha256 = None if runtime is Runtime.tensorrt else load_model(model).sha256
        runner = open_runner(model, runtime.value)
        spec = preprocess.resolve(runner.input_shape, runner.metadata, model=model)
        images = load_images(data, spec, resize=preprocess.resize)
        started = time.perf_counter()
        metrics = _run_with_progress(
            evaluate,
            runner,
            images,
            spec,
            trigger=parsed,
            target=target,
            mode=mode.value,
            runtime=runtime.value,
            batch_size=batch_size,
        )
        report_path = None
        if report is not None:
            from ulrl_edge.report import verify_report, write_report

            report_path = write_report(
                verify_report(
                    model, data, metrics.to_dict(), sha256=sha256,
                    preprocess=json.loads(spec.to_json()), runtime=runtime.value,
                    batch_size=batch_size, seconds=time.perf_counter() - started,
                    argv=["ulrl-edge", *sys.argv[1:]],
                ),
                report,
            )
        if as_json:
            emit_json({
                **metrics.to_dict(), "model": str(model), "data": str(data),
                "report": str(report_path) if report_path else None,
            })
            return
        lines = [
            _rate_line(
                "ACC",
                metrics.accuracy,
                metrics.n_correct,
                metrics.n,
                metrics.accuracy_ci95,
                "images",
            ),
        ]
        if metrics.attack_success_rate is not None:
            lines.append(
                _rate_line(
                    "ASR",
                    metrics.attack_success_rate,
                    metrics.n_attack_success,
                    metrics.n_triggered,
                    metrics.attack_success_rate_ci95,
                    "triggered images",
                )
            )
        if report_path is not None:
            lines.append(f"report: {report_path.with_name('report.html')} (and report.json)")
        typer.echo("\n".join(lines))


def _run_with_progress(evaluate, *args: Any, **kwargs: Any):
    """Call ``evaluate`` with a Rich progress bar on stderr (only on a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = stderr_console()
    if SETTINGS.quiet or not console.is_terminal:
        return evaluate(*args, **kwargs)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("verify", total=None)

        def on_event(event: dict) -> None:
            bar.update(task, completed=event["done"], total=event["total"])

        return evaluate(*args, progress=on_event, **kwargs)
