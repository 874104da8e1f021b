"""``ulrl-edge purify MODEL --clean SRC -o OUT``: the whole job, verified.

No ``from __future__ import annotations`` here: Typer must see the Annotated option types.
"""


import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ulrl_edge.cli.common import SETTINGS, command_boundary, emit_json, info, stdout_console
from ulrl_edge.cli.config_file import ConfigOpt
from ulrl_edge.cli.defense_options import (
    IO_PANEL,
    PANEL,
    AmpOpt,
    CleanOpt,
    DeviceOpt,
    FlipOpt,
    JsonOpt,
    MaxSuspiciousOpt,
    Preset,
    PresetOpt,
    QuietOpt,
    ReportOpt,
    SeedOpt,
    SetOpt,
    config_overrides,
    data_options,
    print_defense_config,
)
from ulrl_edge.cli.main import app
from ulrl_edge.cli.options import PreprocessFlags, preprocess_options
from ulrl_edge.cli.print_config import PrintConfigOpt

CHECK = "Verification"


class OutFormat(str, Enum):
    onnx = "onnx"
    tensorrt = "tensorrt"


class Mode(str, Enum):
    all2one = "all2one"
    all2all = "all2all"


@app.command("purify", rich_help_panel="Purify")
@preprocess_options
def purify(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="The vendor ONNX model (never modified).",
                                 show_default=False),
    clean: CleanOpt = ...,
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the purified ONNX model.",
                             show_default=False, rich_help_panel=IO_PANEL),
    method: str = typer.Option(
        "ulrl", "--method", rich_help_panel=PANEL,
        help="Defense: ulrl (default), or a baseline: ft, fp, rnp, anp, ibau, sau."),
    preset: PresetOpt = Preset.auto,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    amp: AmpOpt = True,
    max_suspicious: MaxSuspiciousOpt = None,
    flip: FlipOpt = False,
    settings: SetOpt = None,
    report: ReportOpt = None,
    trigger: Optional[str] = typer.Option(  # noqa: UP045
        None, "--trigger", help="A known trigger, to measure ASR before/after (never used "
        "to purify), e.g. badnets:size=3,pos=br.", rich_help_panel=CHECK),
    target: Optional[int] = typer.Option(  # noqa: UP045
        None, "--target", help="The known attack's target class.", rich_help_panel=CHECK),
    mode: Mode = typer.Option(Mode.all2one, "--mode", help="Attack mapping for the ASR.",
                              rich_help_panel=CHECK),
    max_acc_drop: float = typer.Option(
        0.02, "--max-acc-drop", min=0.0, max=1.0,
        help="Gate: largest accepted drop of held-out clean accuracy.", rich_help_panel=CHECK),
    force: bool = typer.Option(False, "--force", help="Exit 0 even when the gate fails.",
                               rich_help_panel=CHECK),
    out_format: OutFormat = typer.Option(
        OutFormat.onnx, "--format", rich_help_panel="Export",
        help="onnx: the purified ONNX file; tensorrt: also a TensorRT engine beside it "
        "(OUT with .engine), checked against the ONNX file on the clean samples."),
    fp16: bool = typer.Option(False, "--fp16", rich_help_panel="Export",
                              help="With --format tensorrt: build an fp16 engine."),
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
    print_config: PrintConfigOpt = False,
    *,
    preprocess: PreprocessFlags,
) -> None:
    """Remove a backdoor: unlearn, re-initialise the suspicious head rows, relearn, verify.

    A fifth of the clean samples is held out; clean accuracy (and, with --trigger, the attack
    success rate) is measured with onnxruntime on the file written, before and after. If the
    held-out accuracy drops by more than --max-acc-drop the output is kept but the command
    exits 1 (0 with --force).

    [bold]Examples[/bold]
      ulrl-edge purify vendor.onnx --clean samples/ -o purified.onnx --report out/
      ulrl-edge purify vendor.onnx -c samples/ -o out.onnx --trigger badnets:size=3 --target 0
      ulrl-edge purify vendor.onnx -c samples/ -o out.onnx --config pinned.toml --print-config
    """
    with command_boundary("purify"):
        from ulrl_edge.cli.progress import progress_printer
        from ulrl_edge.config import Gate
        from ulrl_edge.errors import BadInput, CheckFailed
        from ulrl_edge.pipeline import TriggerOptions
        from ulrl_edge.pipeline import purify as run_purify

        if trigger is not None and target is None and mode is Mode.all2one:
            raise BadInput("--trigger needs --target K, the class the attack aims at")
        known = TriggerOptions(trigger, target, mode.value) if trigger else None
        if known is not None:
            from ulrl_edge.data import parse_trigger

            parse_trigger(trigger)  # a bad spec fails now, not after purification
        overrides = config_overrides(method, settings, ctx, max_suspicious=max_suspicious)
        if print_config:
            print_defense_config(ctx, model, method, preset.value, seed, overrides, preprocess,
                                 as_json)
            return
        if out_format is OutFormat.tensorrt:
            from ulrl_edge.export.trt_env import import_tensorrt

            import_tensorrt()  # fail now (exit 5), not after minutes of purification
        elif fp16:
            raise BadInput("--fp16 needs --format tensorrt")
        with progress_printer() as progress:
            result = run_purify(
                model,
                data_options(clean, preprocess, flip),
                out,
                method=method,
                preset=preset.value,
                seed=seed,
                device=getattr(device, "value", device),
                amp=amp,
                config_overrides=overrides,
                trigger=known,
                gate=Gate(max_acc_drop=max_acc_drop),
                report_dir=report,
                argv=["ulrl-edge", *sys.argv[1:]],
                progress=progress,
            )
        rep = result.report
        engine = None
        if out_format is OutFormat.tensorrt:
            engine = build_engine_for(result, clean, preprocess, fp16)
        if as_json:
            emit_json({**summary_dict(result), "engine": engine.to_dict() if engine else None})
        elif not SETTINGS.quiet:
            print_summary(result)
            if engine is not None:
                info(f"TensorRT engine ({engine.precision}): {engine.output}; parity with the "
                     f"ONNX file: {'passed' if engine.passed else 'FAILED'}")
        if engine is not None:
            engine.raise_if_failed()
        if not result.gate_passed:
            reasons = "; ".join(rep.gate["reasons"])
            message = f"verification gate failed: {reasons}; output kept at {result.output_path}"
            if force:
                info(f"[yellow]warning:[/] {message} (--force)")
            else:
                raise CheckFailed(message + " (use --force to accept)")


def build_engine_for(result, clean, preprocess, fp16: bool):
    """Build a TensorRT engine of the purified file and check it on the clean samples."""
    from ulrl_edge.cli.progress import progress_step
    from ulrl_edge.data.preprocess import PreprocessSpec
    from ulrl_edge.export.exporter import export

    spec_json = result.report.data["preprocess"]
    with progress_step("building the TensorRT engine and checking it"):
        return export(
            result.output_path,
            result.output_path.with_suffix(".engine"),
            format="tensorrt",
            spec=PreprocessSpec.from_dict(spec_json),
            data=clean,
            resize=preprocess.resize,
            fp16=fp16,
        )


def summary_dict(result) -> dict:
    rep = result.report
    return {
        "output": str(result.output_path),
        "output_sha256": rep.output.get("sha256"),
        "source_sha256": rep.source.get("sha256"),
        "report": str(result.report_path) if result.report_path else None,
        "method": rep.method,
        "preset": rep.preset,
        "seed": rep.seed,
        "flagged": rep.defense.get("flagged"),
        "before": rep.metrics["before"],
        "after": rep.metrics["after"],
        "gate": rep.gate,
        "timings": rep.timings,
    }


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _points(before, after) -> str:
    return "—" if before is None or after is None else f"{100 * (after - before):+.1f} points"


def print_summary(result) -> None:
    """A before/after table on stdout, then where the outputs are."""
    from rich.table import Table

    rep = result.report
    before, after = rep.metrics["before"], rep.metrics["after"]
    table = Table(title=f"{rep.method} ({rep.preset}) on {rep.data['n_verify']} held-out images")
    table.add_column("metric")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    table.add_column("change", justify="right")
    table.add_row("clean accuracy (ACC) ↑", _pct(before["accuracy"]), _pct(after["accuracy"]),
                  _points(before["accuracy"], after["accuracy"]))
    if before.get("attack_success_rate") is not None:
        table.add_row(
            "attack success rate (ASR) ↓",
            _pct(before["attack_success_rate"]),
            _pct(after["attack_success_rate"]),
            _points(before["attack_success_rate"], after["attack_success_rate"]),
        )
    console = stdout_console()
    console.print(table)
    flagged = rep.defense.get("flagged")
    if flagged is not None:
        console.print(f"re-initialised head rows (suspicious classes): {flagged or 'none'}")
    verdict = "[green]passed[/]" if result.gate_passed else "[bold red]FAILED[/]"
    console.print(f"gate (max ACC drop {rep.gate['max_acc_drop']:.3f}): {verdict}")
    console.print(f"purified model: {result.output_path}")
    if result.report_path:
        console.print(f"report: {result.report_path.with_name('report.html')} (and report.json)")
