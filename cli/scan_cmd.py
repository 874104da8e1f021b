"""``ulrl-edge scan MODEL --clean SRC``: which classes look like backdoor targets."""


import sys
from pathlib import Path

import typer

from ulrl_edge.cli.common import SETTINGS, command_boundary, emit_json, stdout_console
from ulrl_edge.cli.config_file import ConfigOpt
from ulrl_edge.cli.defense_options import (
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


@app.command("scan", rich_help_panel="Check")
@preprocess_options
def scan(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="The ONNX model to scan (never modified).",
                                 show_default=False),
    clean: CleanOpt = ...,
    preset: PresetOpt = Preset.auto,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    amp: AmpOpt = True,
    max_suspicious: MaxSuspiciousOpt = None,
    flip: FlipOpt = False,
    settings: SetOpt = None,
    report: ReportOpt = None,
    fail_on_suspicious: bool = typer.Option(
        False, "--fail-on-suspicious", help="Exit 1 when any class is flagged.",
        rich_help_panel=PANEL),
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
    print_config: PrintConfigOpt = False,
    *,
    preprocess: PreprocessFlags,
) -> None:
    """Flag likely backdoor target classes without writing a model (ULRL's unlearning phase).

    Gradient ascent on the clean samples moves the head rows of backdoor targets much more
    than the others; rows whose change is a robust outlier (MAD z > 3.5) are flagged. The
    auto preset also flags a class that one change shared by all images (a small
    perturbation, a slight smooth warp or a small pasted patch) reaches far more easily than
    any other (the target, warp and patch probes).

    [bold]Examples[/bold]
      ulrl-edge scan vendor.onnx --clean samples/
      ulrl-edge scan vendor.onnx --clean samples/ --fail-on-suspicious --json
      ulrl-edge scan vendor.onnx --clean samples/ --config pinned.toml --report out/
    """
    with command_boundary("scan"):
        from ulrl_edge.cli.progress import progress_printer
        from ulrl_edge.errors import CheckFailed
        from ulrl_edge.scan import scan as run_scan

        overrides = config_overrides("ulrl", settings, ctx, max_suspicious=max_suspicious)
        if print_config:
            print_defense_config(ctx, model, "ulrl", preset.value, seed, overrides, preprocess,
                                 as_json)
            return

        with progress_printer() as progress:
            result = run_scan(
                model,
                data_options(clean, preprocess, flip),
                preset=preset.value,
                seed=seed,
                device=getattr(device, "value", device),
                amp=amp,
                config_overrides=overrides,
                report_dir=report,
                argv=["ulrl-edge", *sys.argv[1:]],
                progress=progress,
            )
        if as_json:
            emit_json({
                "model": str(model),
                "source_sha256": result.report.source["sha256"],
                "suspicious": result.suspicious,
                "verdict": result.verdict,
                "delta": result.report.defense["delta"],
                "z": result.report.defense["mad"]["z"],
                "probe": result.report.defense.get("probe"),
                "warp_probe": result.report.defense.get("warp_probe"),
                "patch_probe": result.report.defense.get("patch_probe"),
                "seed": seed,
                "preset": preset.value,
            })
        elif not SETTINGS.quiet:
            console = stdout_console()
            for s in result.suspicious:
                how = [f"unlearning ({s['runs_agreeing']} of {s['runs']} runs)"
                       if name == "unlearning" and s.get("runs_agreeing") is not None else name
                       for name in s["found_by"]]
                console.print(f"class {s['class']} ({s['name']}): Δ {s['delta']:.4g}, "
                              f"z {s['z'] if s['z'] is None else round(s['z'], 2)}; "
                              f"found by {' and '.join(how)}")
            console.print(result.verdict)
            if report is not None:
                console.print(f"report: {report / 'report.html'} (and report.json)")
        if fail_on_suspicious and result.suspicious:
            raise CheckFailed(f"{model}: {result.verdict}")
