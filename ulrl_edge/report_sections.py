"""The evidence sections of report.html: each takes a report dict, returns HTML ('' when the
report has nothing for it). Every number is both in a table and, with matplotlib, a plot.
"""

from __future__ import annotations

import math
from html import escape

from ulrl_edge import plots
from ulrl_edge.report_verdict import class_label, pct

MAD_SCALE = 1.4826  # as ulrl_edge.defenses.mad (not imported: it would pull in torch)


def img(plot, *args, alt: str) -> str:
    """An embedded PNG made by ``plot(*args)``; '' without matplotlib."""
    if not plots.available():
        return ""
    return f"<img alt='{escape(alt)}' src='data:image/png;base64,{plot(*args)}'>"


def table(head: list[str], rows: list[list], *, raw: bool = False,
          classes: list[str] | None = None, numeric: bool = True) -> str:
    """An HTML table; cells are escaped unless ``raw``; ``classes`` give row CSS classes;
    ``numeric`` right-aligns every column but the first."""
    cell = (lambda v: str(v)) if raw else (lambda v: escape(str(v)))
    out = ["<table class='num'><tr>" if numeric else "<table><tr>",
           *(f"<th>{escape(h)}</th>" for h in head), "</tr>"]
    for i, row in enumerate(rows):
        css = classes[i] if classes and classes[i] else ""
        out.append(f"<tr class='{css}'>" if css else "<tr>")
        out.extend(f"<td>{cell(v)}</td>" for v in row)
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _ci(values) -> str:
    return "—" if not values else f"{pct(values[0])} – {pct(values[1])}"


def _points(before, after) -> str:
    if before is None or after is None:
        return "—"
    return f"{100 * (after - before):+.1f} points"


def metrics_section(report: dict) -> str:
    """ACC and ASR, before and after, with 95% Wilson intervals and image counts."""
    metrics = report.get("metrics") or {}
    if "measured" in metrics:
        pairs = [(metrics["measured"], None)]
    elif "before" in metrics:
        pairs = [(metrics["before"], metrics.get("after") or {})]
    else:
        return ""
    before, after = pairs[0]
    kinds = [("accuracy", "Clean accuracy (ACC) — higher is better", "n", "clean images")]
    if before.get("attack_success_rate") is not None:
        kinds.append(("attack_success_rate", "Attack success rate (ASR) — lower is better",
                      "n_triggered", "triggered images"))
    head = ["metric", "before (95% interval)", "after (95% interval)", "change", "images"]
    if after is None:
        head = ["metric", "measured", "95% interval", "images"]
    rows = []
    for key, label, count, what in kinds:
        b_ci = (before.get("ci95") or {}).get(key)
        if after is None:
            rows.append([label, pct(before.get(key)), _ci(b_ci), f"{before.get(count)} {what}"])
            continue
        a_ci = (after.get("ci95") or {}).get(key)
        rows.append([label, f"{pct(before.get(key))} ({_ci(b_ci)})",
                     f"{pct(after.get(key))} ({_ci(a_ci)})",
                     _points(before.get(key), after.get(key)), f"{after.get(count)} {what}"])
    labels = ["clean accuracy (ACC)\nhigher is better",
              "attack success rate (ASR)\nlower is better"][: len(kinds)]
    plot = img(
        plots.rates, labels,
        [before.get(k) for k, *_ in kinds],
        [after.get(k) if after else None for k, *_ in kinds],
        [(before.get("ci95") or {}).get(k) for k, *_ in kinds],
        [(after.get("ci95") or {}).get(k) if after else None for k, *_ in kinds],
        alt="ACC and ASR with 95% intervals",
    )
    where = ("on clean images held out from purification, measured with onnxruntime on the "
             "files themselves" if after is not None else "measured with onnxruntime")
    trigger = before.get("trigger")
    note = (f"ACC: share of clean images classified correctly, {where}. ASR: share of images "
            f"carrying the trigger <code>{escape(str(trigger))}</code> that the model sends to "
            f"the attacker's class {escape(class_label(report, before.get('target')))}; near 0% "
            "means the backdoor no longer works." if trigger else
            f"ACC: share of clean images classified correctly, {where}. No trigger was given, so "
            "the attack success rate was not measured.")
    title = "Before and after" if after is not None else "Measured accuracy and attack success"
    return (
        f"<section id='metrics'><h2>{title}</h2>"
        f"<p class='note'>{note} The intervals show the uncertainty from the number of "
        "images: differences smaller than them may be chance.</p>"
        + plot + table(head, rows) + "</section>"
    )


def per_class_section(report: dict) -> str:
    """Accuracy of each class before and after; rows that fell 5 points or more in red."""
    metrics = report.get("metrics") or {}
    before = metrics.get("before") or metrics.get("measured")
    if not before or not before.get("per_class_accuracy"):
        return ""
    after = metrics.get("after")
    names = list(before.get("class_names") or before["per_class_accuracy"])
    b = [before["per_class_accuracy"].get(n) for n in names]
    a = [(after.get("per_class_accuracy") or {}).get(n) for n in names] if after else None
    target = before.get("target")
    rows, css = [], []
    for k, name in enumerate(names):
        label = (f"{k} {name}" if str(name) != str(k) else str(k))
        label += " (attack target)" if k == target else ""
        if a is None:
            rows.append([label, pct(b[k])])
            css.append("")
            continue
        change = None if b[k] is None or a[k] is None else a[k] - b[k]
        rows.append([label, pct(b[k]), pct(a[k]), _points(b[k], a[k])])
        css.append("worse" if change is not None and change <= -0.05 else "")
    head = ["class", "before", "after", "change"] if a is not None else ["class", "accuracy"]
    red = " (red rows fell 5 points or more)" if a is not None else ""
    return (
        "<section id='per-class'><h2>Accuracy per class</h2>"
        f"<p class='note'>Clean accuracy of each class{red}. A class with only a few images "
        "can move a lot by chance.</p>"
        + img(plots.per_class, names, b, a, alt="accuracy per class")
        + table(head, rows, classes=css) + "</section>"
    )


def _unlearn_info(report: dict) -> dict | None:
    defense = report.get("defense") or {}
    if report.get("command") == "scan":
        return defense if "delta" in defense else None
    return defense.get("unlearn")


def _line(mad: dict) -> float | None:
    """The Δ above which a neuron is an outlier: median + threshold · 1.4826 · MAD."""
    median, spread, t = mad.get("median"), mad.get("mad"), mad.get("threshold")
    if median is None or spread is None or t is None:
        return None
    return median + t * MAD_SCALE * spread if spread > 0 else median


def neurons_section(report: dict) -> str:
    """Δ per output neuron with the MAD threshold, flagged neurons marked (ULRL, scan)."""
    info = _unlearn_info(report)
    if not info or not info.get("delta"):
        return ""
    names = list((report.get("data") or {}).get("classes") or [])
    flagged = list(info.get("flagged") or [])
    runs = info.get("runs") or []
    if len(runs) > 1:
        panels = []
        for i, run in enumerate(runs):
            mad = run.get("mad") or {}
            outliers = ", ".join(str(k) for k in mad.get("candidates") or []) or "none"
            panels.append({"title": f"run {i + 1} (seed {run.get('seed')}): outliers {outliers}",
                           "delta": run["delta"], "line": _line(mad),
                           "candidates": mad.get("candidates")})
    else:
        mad = info.get("mad") or {}
        panels = [{"title": "weight change per output neuron", "delta": info["delta"],
                   "line": _line(mad), "candidates": mad.get("candidates")}]
    cfg = (report.get("defense") or {}).get("config") or report.get("config") or {}
    votes = info.get("votes")
    z = (info.get("mad") or {}).get("z") or []
    rows, css = [], []
    for k, delta in enumerate(info["delta"]):
        zk = z[k] if k < len(z) else None
        row = [class_label(report, k), f"{delta:.4g}",
               "∞" if zk is None and k < len(z) else ("—" if zk is None else f"{zk:.2f}")]
        if votes is not None:
            row.append(f"{votes[k]} of {len(runs)}")
        row.append("yes" if k in flagged else "")
        rows.append(row)
        css.append("flag" if k in flagged else "")
    head = ["output neuron (class)", *(["mean Δ", "robust z of mean Δ"] if votes is not None
                                       else ["Δ", "robust z"])]
    head += (["runs that flagged it"] if votes is not None else []) + ["flagged"]
    rule = (f" A neuron is flagged only when at least {cfg.get('unlearn_agreement')} of "
            f"{len(runs)} independent runs find it an outlier." if len(runs) > 1 else "")
    flagged_text = ", ".join(class_label(report, k) for k in flagged) or "none"
    scan = report.get("command") == "scan"
    if not flagged and len(runs) > 1:
        flagged_text += (f" (no neuron was an outlier in at least {cfg.get('unlearn_agreement')}"
                         f" of {len(runs)} runs)")
    marks = ("red bars are the flagged neurons, the likely backdoor targets" if scan else
             "red bars are the neurons flagged and re-initialised")
    labels = ("flagged (suspicious)" if scan else "flagged and re-initialised",
              "outlier in this run" if len(runs) > 1 else "outlier (over --max-suspicious)")
    return (
        "<section id='neurons'><h2>Which output neurons look like a backdoor</h2>"
        "<p class='note'>ULRL makes a copy of the model forget (gradient ascent on the clean "
        "images) and measures how far each output neuron's weights move (Δ, one bar per "
        "class). A backdoor's target class typically moves much further than the rest. Bars "
        "above the dashed line are outliers (robust z above "
        f"{escape(str((info.get('mad') or {}).get('threshold', 3.5)))}); {marks}."
        f"{escape(rule)}</p>"
        + img(plots.neuron_changes, names, panels, flagged, *labels,
              alt="weight change per neuron")
        + f"<p><b>Flagged:</b> {escape(flagged_text)}</p>"
        + table(head, rows, classes=css) + "</section>"
    )


def learning_section(report: dict) -> str:
    """The unlearning curve (clean accuracy per epoch) and the relearning curves."""
    info = _unlearn_info(report)
    defense = report.get("defense") or {}
    parts = []
    runs = (info or {}).get("runs") or []
    if runs:
        cfg = defense.get("config") or report.get("config") or {}
        stop = cfg.get("unlearn_stop_acc", 0.2)
        series = [(f"run {i + 1}", [c["epoch"] for c in r.get("curve", [])],
                   [c.get("acc") for c in r.get("curve", [])]) for i, r in enumerate(runs)]
        used = ", ".join(str(r.get("epochs_used", len(r.get("curve", [])))) for r in runs)
        rule = (f"each run stops once its accuracy falls to {pct(stop)}"
                if cfg.get("unlearn_check") != "step" else
                f"the accuracy is checked after every step, so a run stops mid-epoch as soon as "
                f"a batch falls to {pct(stop)}; each point is the average of its epoch")
        panel = {"title": "unlearning: accuracy on the clean images", "ylabel": "accuracy",
                 "series": series, "percent": True, "ylim": (0, 1),
                 "hline": (stop, f"stop at {pct(stop)}")}
        parts.append(
            "<section id='unlearning'><h2>Unlearning curve</h2>"
            "<p class='note'>Accuracy of the forgetting copy on the clean images, per epoch: "
            f"{escape(rule)}. Epochs used per run: {escape(used)}.</p>"
            + img(plots.curves, [panel], 6.0, alt="unlearning curve")
            + table(["run", "epoch", "accuracy", "loss", "learning rate"],
                    [[i + 1, c["epoch"], pct(c.get("acc")), _num(c.get("loss")),
                      _num(c.get("lr"))] for i, r in enumerate(runs) for c in r.get("curve", [])])
            + "</section>")
    curve = (defense.get("relearn") or defense.get("finetune") or {}).get("curve") or []
    if curve:
        epochs = [c["epoch"] for c in curve]
        phase = "fine-tuning" if "finetune" in defense else "relearning"
        panels = [
            {"title": f"{phase}: training accuracy", "ylabel": "accuracy", "percent": True,
             "series": [("accuracy", epochs, [c.get("acc") for c in curve])], "ylim": (0, 1)},
            {"title": f"{phase}: loss", "ylabel": "loss",
             "series": [("loss", epochs, [c.get("loss") for c in curve])]},
        ]
        rows = sorted({k for c in curve for k in (c.get("cos") or {})}, key=int)
        if rows:
            panels.append({"title": "cosine to the old (backdoored) weights", "ylabel": "cos",
                           "ylim": (-1.05, 1.05), "legend": True, "series": [
                               (class_label(report, int(k)), epochs,
                                [(c.get("cos") or {}).get(k) for c in curve]) for k in rows]})
        if "finetune" in defense:
            title, what = "Fine-tuning curves", ("The model is trained on the clean images; "
                                                 "training accuracy should rise and the loss fall.")
        elif rows:
            title, what = "Relearning curves", (
                "The original model, with the flagged neurons reset, is trained on the clean "
                "images: accuracy should climb back and the loss fall. The cosine panel shows "
                "each reset neuron staying away from its old, backdoored direction (0 means "
                "unrelated).")
        else:
            title, what = "Relearning curves", (
                "Nothing was flagged, so the original model was simply fine-tuned on the clean "
                "images: training accuracy should rise and the loss fall.")
        hold = defense.get("holdout_acc") or {}
        note = (f" Held-out accuracy of the PyTorch model: {pct(hold.get('before'))} before, "
                f"{pct(hold.get('after'))} after." if hold else "")
        parts.append(
            f"<section id='relearning'><h2>{title}</h2><p class='note'>{escape(what)}"
            f"{escape(note)}</p>"
            + img(plots.curves, panels, 4.0 * len(panels) + 1.0, alt="relearning curves")
            + "</section>")
    return "".join(parts)


def _num(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.4g}"
