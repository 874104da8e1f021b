"""``ulrl-edge inspect``: what is in a model, and can this tool handle it?"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ulrl_edge.cli.common import SETTINGS, command_boundary, emit_json, stdout_console
from ulrl_edge.cli.defense_options import IO_PANEL, quiet_option
from ulrl_edge.cli.main import app

CHECKS = "Checks"


@app.command("inspect", rich_help_panel="Inspect")
def inspect(
    model: Path = typer.Argument(..., help="The ONNX model file.", show_default=False),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout.",
                                  rich_help_panel=IO_PANEL),
    quiet: bool = quiet_option(),
    size: Optional[tuple[int, int]] = typer.Option(  # noqa: UP045 - Typer reads it at runtime
        None,
        "--size",
        metavar="H W",
        help="Image size for inputs whose height/width are dynamic (needed for the parity probe).",
        rich_help_panel=CHECKS,
    ),
    no_parity: bool = typer.Option(
        False, "--no-parity", help="Skip the in-memory import/export parity probe (faster).",
        rich_help_panel=CHECKS,
    ),
    check: bool = typer.Option(
        False,
        "--check",
        rich_help_panel=CHECKS,
        help="Exit 4 if the model does not convert, 1 if the round-trip parity fails.",
    ),
) -> None:
    """Show inputs, outputs, opset, ops, parameters, the classifier head, and whether the
    model converts to PyTorch and back with matching outputs.

    Nothing is written.
    A model that does not convert is reported with exit 0, unless --check is given.
    A file that is not a usable ONNX model exits 3.

    [bold]Examples[/bold]
      ulrl-edge inspect vendor/classifier.onnx
      ulrl-edge inspect vendor/classifier.onnx --json --no-parity
      ulrl-edge inspect vendor/classifier.onnx --check   (exit 4/1 when it will not purify)
    """
    with command_boundary("inspect"):
        from ulrl_edge.errors import CheckFailed, UnsupportedModel
        from ulrl_edge.onnx_io.info import inspect_model

        result = inspect_model(model, size=size, parity=not no_parity)
        if json_out:
            emit_json(result)
        elif not SETTINGS.quiet:
            _print(result)
        if check and not result["converts"]:
            raise UnsupportedModel(result["convert_error"] or result["parity_error"], model)
        if check and result["parity"] is not None:
            failed = [k for k, v in result["parity"].items() if not v["passed"]]
            if failed:
                raise CheckFailed(
                    "round-trip parity failed: "
                    + "; ".join(result["parity"][k]["summary"] for k in failed),
                    model,
                )


def _print(result: dict) -> None:
    from rich.table import Table

    console = stdout_console()
    table = Table(title=f"{result['path']}", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("producer", result["producer"] or "(unknown)")
    table.add_row("opset", str(result["opset"]))
    for t in result["inputs"]:
        table.add_row("input", f"{t['name']}  {t['shape']}  {t['dtype']}  layout {t['layout']}")
    for t in result["outputs"]:
        table.add_row("output", f"{t['name']}  {t['shape']}  {t['dtype']}")
    table.add_row("nodes", str(result["node_count"]))
    ops = ", ".join(f"{op} {n}" for op, n in result["op_histogram"].items())
    table.add_row("ops", ops)
    table.add_row("parameters", f"{result['parameter_count']:,}")
    if result["metadata"]:
        table.add_row("metadata", ", ".join(sorted(result["metadata"])))
    for warning in result["warnings"]:
        table.add_row("warning", warning)
    converts = "yes" if result["converts"] else f"no: {result['convert_error']}"
    table.add_row("converts", converts)
    for note in result["import_notes"]:
        table.add_row("import fix", note)
    head = result["head"]
    if head:
        table.add_row(
            "head",
            f"{head['onnx_op']} {head['name']}  [{head['classes']} classes × "
            f"{head['features']} features]{'  + bias' if head['has_bias'] else ''}",
        )
    elif result["converts"]:
        table.add_row("head", f"not found: {result['head_error']}")
    if result["parity"]:
        for key, label in (("torch", "parity torch"), ("onnx", "parity re-export")):
            entry = result["parity"][key]
            verdict = "ok" if entry["passed"] else "FAILED"
            table.add_row(
                label,
                f"{verdict}  max abs diff {_fmt(entry['max_abs_diff'])}, top-1 agreement "
                f"{_pct(entry['top1_agreement'])} (batch {entry['batch']})",
            )
    elif result["parity_error"]:
        table.add_row("parity", f"not run: {result['parity_error']}")
    console.print(table)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
