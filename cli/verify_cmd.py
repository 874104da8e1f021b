"""``ulrl-edge verify MODEL --data SRC [--trigger SPEC --target K] [--json]``."""

from __future__ import annotations

import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from ulrl_edge.cli.common import SETTINGS, command_boundary, emit_json
from ulrl_edge.cli.config_file import config_option
from ulrl_edge.cli.defense_options import IO_PANEL, quiet_option
from ulrl_edge.cli.main import app
from ulrl_edge.cli.options import PreprocessFlags, preprocess_options


class Runtime(str, Enum):
    ort_cpu = "ort-cpu"
    ort_cuda = "ort-cuda"
    ort_trt = "ort-trt"
    tensorrt = "tensorrt"


ATTACK = "Known attack"
RUN = "Runtime"


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
        ..., "--data", "-d", help="Clean labelled images: a class-folder tree or an .npz.",
        rich_help_panel=IO_PANEL,
    ),
    trigger: str = typer.Option(
        None, "--trigger", help="Known trigger for the ASR, e.g. badnets:size=3,pos=br.",
        rich_help_panel=ATTACK,
    ),
    target: int = typer.Option(None, "--target", help="The attack's target class (all2one).",
                               rich_help_panel=ATTACK),
    mode: Mode = typer.Option(Mode.all2one, "--mode", help="Attack mapping for the ASR.",
                              rich_help_panel=ATTACK),
    runtime: Runtime = typer.Option(
        Runtime.ort_cpu, "--runtime", rich_help_panel=RUN,
        help="onnxruntime execution provider, or tensorrt to run a TensorRT engine file."
    ),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per batch.",
                                   rich_help_panel=RUN),
    report: Path = typer.Option(
        None, "--report", help="Folder for report.json and report.html.", show_default=False,
        rich_help_panel=IO_PANEL,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout.",
                                 rich_help_panel=IO_PANEL),
    quiet: bool = quiet_option(),
    config: Optional[Path] = config_option(),  # noqa: UP045
    *,
    preprocess: PreprocessFlags,
) -> None:
    """Measure clean accuracy (ACC) and attack success rate (ASR) with onnxruntime.

    ACC: top-1 accuracy on every image of --data.

    ASR (with --trigger): share of triggered non-target images classified as the target.

    Both are printed with the image count and a 95% Wilson confidence interval.

    [bold]Examples[/bold]
      ulrl-edge verify purified.onnx --data test/
      ulrl-edge verify purified.onnx --data test.npz --trigger badnets:size=3,pos=br --target 0
      ulrl-edge verify purified.engine --runtime tensorrt --data test/ --json
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
        if SETTINGS.quiet:
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
    """Call ``evaluate`` with a progress bar on stderr (see :mod:`ulrl_edge.cli.progress`)."""
    from ulrl_edge.cli.progress import progress_printer

    with progress_printer() as progress:
        return evaluate(*args, progress=progress, **kwargs)
