"""report.html: one self-contained page (inline CSS, plots as base64 PNG) that opens offline.

The page leads with the verdict (see :mod:`ulrl_edge.report_verdict`), then the evidence: a
before/after table of ACC and ASR with 95% intervals, accuracy per class, how ULRL found the
suspicious output neurons, its unlearning and relearning curves, time and memory, and what
is needed to check and reproduce the run. Without matplotlib the tables still render and the
page says how to get the plots.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from ulrl_edge import plots
from ulrl_edge.report_sections import (
    learning_section,
    metrics_section,
    neurons_section,
    per_class_section,
)
from ulrl_edge.report_verdict import verdict

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
 margin:0;background:#f6f8fa}
main{max-width:1080px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:34px 0 6px;
 border-bottom:1px solid #d0d7de;padding-bottom:4px}
.sub{color:#59636e;margin:0 0 18px}.note{color:#59636e;margin:4px 0 10px;max-width:860px}
.verdict{border-radius:10px;padding:16px 20px;margin:8px 0 10px;border:2px solid}
.verdict h2{border:0;margin:0 0 10px;font-size:22px}
.v-good{background:#dafbe1;border-color:#1a7f37}.v-bad{background:#ffebe9;border-color:#cf222e}
.v-warn{background:#fff8c5;border-color:#bf8700}.v-info{background:#eef3f8;border-color:#8c959f}
.finding{display:flex;gap:12px;margin:8px 0}.finding b{display:block}
.badge{flex:0 0 auto;width:26px;height:26px;border-radius:50%;color:#fff;font-weight:700;
 text-align:center;line-height:26px}
.b-good{background:#1a7f37}.b-bad{background:#cf222e}.b-warn{background:#bf8700}
.b-info{background:#6e7781}
table{border-collapse:collapse;margin:8px 0 12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d7de;padding:5px 10px;text-align:left}th{background:#f6f8fa}
table.num td:not(:first-child),table.num th:not(:first-child){text-align:right}
tr.worse td{background:#ffebe9}tr.flag td{background:#ffebe9;font-weight:600}
tr.better td{background:#dafbe1}
img{max-width:100%;display:block;margin:6px 0}
code,pre{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:10px;
 white-space:pre-wrap;word-break:break-all}
.hint{background:#fff8c5;border:1px solid #bf8700;border-radius:6px;padding:8px 12px}
details{margin:8px 0}summary{cursor:pointer;color:#0969da}
footer{color:#59636e;font-size:13px;margin-top:30px}
"""

_TITLES = {
    "purify": "Backdoor removal report",
    "scan": "Backdoor scan report",
    "verify": "Model verification report",
}
_MARK = {"good": "✓", "bad": "✗", "warn": "!", "info": "i"}


def render_html(report: dict) -> str:
    """The whole page for a report dict (as in ``report.json``) of purify, scan or verify."""
    command = report.get("command", "")
    source = report.get("source") or {}
    name = Path(str(source.get("path", "model"))).name
    view = verdict(report)
    parts = [
        f"<h1>{escape(_TITLES.get(command, 'ulrl-edge report'))}: {escape(name)}</h1>",
        f"<p class='sub'>{escape(_subtitle(report))}</p>",
        _verdict_box(view),
    ]
    if not plots.available():
        parts.append(
            "<p class='hint'>Plots are missing: they need matplotlib. Install it with "
            f"<code>{escape(plots.INSTALL_HINT)}</code> and rerun the command. Every number "
            "is in the tables below and in <code>report.json</code>.</p>"
        )
    for section in (metrics_section, per_class_section, neurons_section, learning_section,
                    _resources_section, _provenance_section):
        parts.append(section(report))
    parts.append(
        f"<footer>report.json beside this page holds every number (schema version "
        f"{escape(str(report.get('schema_version')))}, documented in docs/report-schema.md)."
        "</footer>"
    )
    body = "\n".join(p for p in parts if p)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(_TITLES.get(command, 'ulrl-edge report'))}: {escape(name)}</title>"
        f"<style>{_CSS}</style></head>\n<body><main>\n{body}\n</main></body></html>\n"
    )


def write_html(report, folder: str | Path) -> Path:
    """Write ``report.html`` into ``folder`` (created if missing), atomically.

    Args:
        report: A report dict, or a :class:`~ulrl_edge.report.RunReport`.
        folder: Output folder.

    Returns:
        The path of ``report.html``.
    """
    from ulrl_edge.onnx_io.to_onnx import write_atomically

    if not isinstance(report, dict):
        report = json.loads(report.to_json())
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.html"
    write_atomically(render_html(report).encode("utf-8"), path)
    return path


def _verdict_box(view) -> str:
    rows = []
    for item in view.findings:
        rows.append(
            f"<div class='finding'><span class='badge b-{item.status}'>{_MARK[item.status]}"
            f"</span><div><b>{escape(item.title)}</b>{escape(item.detail)}</div></div>"
        )
    return (
        f"<section id='verdict' class='verdict v-{view.status}'>"
        f"<h2>{escape(view.headline)}</h2>{''.join(rows)}</section>"
    )


_PHASE_ORDER = ("load", "import", "defend", "export", "verify")
_SUB = {"unlearn_s": "unlearning", "relearn_s": "relearning", "finetune_s": "fine-tuning"}


def _subtitle(report: dict) -> str:
    parts = [f"ulrl-edge {report.get('command', '')}", report.get("created")]
    if report.get("command") != "verify":
        parts += [f"method {report.get('method') or '—'}", f"preset {report.get('preset') or '—'}",
                  f"seed {report.get('seed')}"]
    return " · ".join(str(p) for p in parts if p)


def _phases(report: dict) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Top-level phases in the order they ran, and the defense's own phases."""
    timings = {k: float(v) for k, v in (report.get("timings") or {}).items()
               if isinstance(v, (int, float))}
    order = [k for k in _PHASE_ORDER if k in timings] + [k for k in timings
                                                         if k not in _PHASE_ORDER]
    sub = [(_SUB.get(k, k.removesuffix("_s")), float(v))
           for k, v in ((report.get("defense") or {}).get("timings") or {}).items()
           if k != "total_s" and isinstance(v, (int, float))]
    sub.sort(key=lambda kv: list(_SUB.values()).index(kv[0]) if kv[0] in _SUB.values() else 9)
    return [(k, timings[k]) for k in order], sub


def _resources_section(report: dict) -> str:
    from ulrl_edge.report_sections import img, table

    phases, sub = _phases(report)
    rows = []
    bars = []
    for name, secs in phases:
        rows.append([escape(name), f"{secs:.1f} s"])
        if name == "defend" and sub:
            rows += [[f"&nbsp;&nbsp;&nbsp;of which {escape(k)}", f"{v:.1f} s"] for k, v in sub]
            bars += [(f"defend: {k}", v) for k, v in sub]
            rest = secs - sum(v for _, v in sub)
            bars += [("defend: other", rest)] if rest >= 0.05 else []
        else:
            bars.append((name, secs))
    if len(phases) > 1:
        rows.append(["<b>total</b>", f"<b>{sum(v for _, v in phases):.1f} s</b>"])
    memory = report.get("peak_memory_mb") or {}
    labels = {"rss": "peak memory (process RSS)", "cuda": "peak GPU memory (CUDA)"}
    mem_rows = [[labels.get(k, k), f"{v:,.0f} MB"] for k, v in memory.items() if v is not None]
    compute = report.get("compute") or {}
    where = ""
    if compute.get("device"):
        amp = compute.get("amp")
        precision = f"mixed precision ({escape(amp)})" if amp else "float32"
        where = f" Trained on <code>{escape(compute['device'])}</code> in {precision}."
    return (
        "<section id='resources'><h2>Time and memory</h2>"
        "<p class='note'>Wall-clock seconds per phase of the run, and the most memory the "
        f"process used, on the machine that ran it.{where}</p>"
        + (img(plots.timings, bars, alt="seconds per phase") if len(bars) > 1 else "")
        + table(["phase", "time"], rows, raw=True)
        + (table(["memory", "peak"], mem_rows) if mem_rows else "")
        + "</section>"
    )


def _provenance_section(report: dict) -> str:
    from ulrl_edge.report import reproduce_command
    from ulrl_edge.report_sections import table

    source, output = report.get("source") or {}, report.get("output") or {}
    rows = [["input model", source.get("path", "—"), source.get("sha256", "—")]]
    if output:
        rows.append(["output model", output.get("path", "—"), output.get("sha256", "—")])
        if output.get("written_as"):
            rows.append(["output written as", output["written_as"], ""])
    data = report.get("data") or {}
    if data.get("source"):
        n_purify, n_verify = data.get("n_purify") or 0, data.get("n_verify") or 0
        counts = (f"{n_purify} images to purify, {n_verify} held out to verify" if n_purify
                  and n_verify else f"{n_purify or n_verify} images")
        rows.append(["clean samples", data["source"], counts])
    parity = report.get("parity") or {}
    parity_rows = [
        [name, "passed" if p.get("passed") else "FAILED", f"{p.get('max_abs_diff') or 0:.2e}",
         f"{100 * (p.get('top1_agreement') or 0):.1f}%"]
        for name, p in sorted(parity.items(), key=lambda kv: kv[0] != "import")
        if isinstance(p, dict)
    ]
    found = dict(report.get("versions") or {})
    tool = [("ulrl-edge", found.pop("ulrl-edge"))] if "ulrl-edge" in found else []
    versions = " · ".join(f"{escape(k)} <code>{escape(str(v))}</code>"
                          for k, v in tool + sorted(found.items()))
    command = reproduce_command(report, multiline=True)
    config = json.dumps(report.get("config") or {}, indent=2, sort_keys=True)
    preprocess = json.dumps(data.get("preprocess") or {}, sort_keys=True)
    note = "SHA-256 fingerprints identify the exact files."
    if parity_rows:
        note += (" Parity: the PyTorch copy and the written ONNX file give the same outputs as "
                 "the file they came from (largest absolute difference; share of inputs with "
                 "the same top-1 class).")
    return (
        "<section id='provenance'><h2>Files, checks and how to reproduce</h2>"
        f"<p class='note'>{note}</p>"
        + table(["file", "path", "SHA-256 / counts"], rows, numeric=False)
        + (table(["parity check", "result", "max abs diff", "same top-1"], parity_rows)
           if parity_rows else "")
        + "<p><b>Command to reproduce</b> (run it in a shell; with the same files, seed and "
        "versions it repeats this run):</p>"
        + f"<pre id='command'>{escape(command or '(not recorded)')}</pre>"
        + f"<p id='versions'><b>Tool and library versions:</b> {versions}</p>"
        + "<details><summary>All settings and the preprocessing</summary>"
        + f"<pre>{escape(config)}</pre><p>preprocessing: <code>{escape(preprocess)}</code></p>"
        + "</details></section>"
    )


__all__ = ["render_html", "write_html"]
