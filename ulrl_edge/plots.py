"""The report's figures: matplotlib (Agg, no pyplot) → base64 PNG strings.

matplotlib is optional (the ``report`` extra): it is imported inside each function, and
:func:`available` tells the HTML page whether to draw or to say how to get plots. Every
function takes plain lists, so the figures are testable without a run.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

INSTALL_HINT = "pip install 'ulrl-edge[report]'"

BEFORE, AFTER = "#9aa5b1", "#1f6feb"  # grey: the vendor's model; blue: the purified one
FLAGGED, CANDIDATE, PLAIN = "#d1242f", "#e8a33d", "#8c959f"
_DPI = 100


def available() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", alpha=0.3)
    return fig, list(axes)


def _png(fig) -> str:
    buf = io.BytesIO()
    # No Software/date metadata: the same numbers give the same bytes.
    fig.savefig(buf, format="png", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _legend_on_top(fig, ax=None, handles=None) -> None:
    """One legend row above the axes, where it cannot hide a bar (none for one series)."""
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    if len(handles) > 1:
        fig.legend(handles=handles, loc="outside upper center", ncols=len(handles),
                   frameon=False, fontsize=9)


def _pct_axis(ax) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0))


def rates(
    labels: Sequence[str],
    before: Sequence[float | None],
    after: Sequence[float | None],
    before_ci: Sequence[Sequence[float] | None],
    after_ci: Sequence[Sequence[float] | None],
) -> str:
    """Grouped bars (before grey, after blue) of rates with their 95% intervals.

    ``after`` may be all None (a verify report: one model, drawn in blue).
    """
    fig, (ax,) = _figure(6.0, 3.2)
    x = range(len(labels))
    has_after = any(v is not None for v in after)
    width = 0.38 if has_after else 0.5
    if has_after:
        series = [(before, before_ci, BEFORE, "before", -width / 2),
                  (after, after_ci, AFTER, "after", width / 2)]
    else:
        series = [(before, before_ci, AFTER, "measured", 0.0)]
    for values, cis, colour, name, shift in series:
        for i, (v, ci) in enumerate(zip(values, cis, strict=True)):
            if v is None:
                continue
            err, top = None, v
            if ci is not None:
                err = [[max(0.0, v - ci[0])], [max(0.0, ci[1] - v)]]
                top = max(v, ci[1])
            ax.bar(i + shift, v, width, color=colour, yerr=err, capsize=4,
                   label=name if i == 0 else None)
            ax.annotate(f"{100 * v:.1f}%", (i + shift, top), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(list(x), labels)
    ax.set_ylim(0, 1.12)
    _pct_axis(ax)
    _legend_on_top(fig, ax)
    return _png(fig)


def per_class(names: Sequence[str], before: Sequence[float | None],
              after: Sequence[float | None] | None) -> str:
    """Accuracy per class, before and after (or one model)."""
    fig, (ax,) = _figure(9.0, 3.2)
    n = len(names)
    pairs = [(before, BEFORE if after else AFTER, "before" if after else "accuracy")]
    if after:
        pairs.append((after, AFTER, "after"))
    width = 0.8 / len(pairs)
    for j, (values, colour, label) in enumerate(pairs):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(n)]
        ax.bar(xs, [v if v is not None else 0.0 for v in values], width, color=colour,
               label=label)
    ax.set_xticks(range(n), [str(s) for s in names], rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    _pct_axis(ax)
    _legend_on_top(fig, ax)
    return _png(fig)


def neuron_changes(
    names: Sequence[str],
    panels: Sequence[dict],
    flagged: Sequence[int],
    flagged_label: str = "flagged and re-initialised",
    candidate_label: str = "outlier in this run",
) -> str:
    """Δ per output neuron, one panel per unlearning run.

    Args:
        names: Class name of each output neuron.
        panels: Each ``{"title", "delta", "line", "candidates"}``: the run's Δ, the Δ above
            which a neuron is an outlier (None if none can be), and its outliers.
        flagged: The neurons finally flagged (red in every panel).
        flagged_label: Legend text for the red bars.
        candidate_label: Legend text for outliers that were not flagged (orange).
    """
    cols = max(1, len(panels))
    width = max(6.0, min(12.0, 0.55 * len(names) * cols + 1.5))
    fig, axes = _figure(width, 3.4, cols)
    marked = set(flagged)
    for ax, panel in zip(axes, panels, strict=False):
        delta = [v if v is not None and math.isfinite(v) else 0.0 for v in panel["delta"]]
        cands = set(panel.get("candidates") or [])
        colours = [FLAGGED if k in marked else CANDIDATE if k in cands else PLAIN
                   for k in range(len(delta))]
        ax.bar(range(len(delta)), delta, color=colours)
        line = panel.get("line")
        if line is not None and math.isfinite(line):
            ax.axhline(line, color=FLAGGED, linestyle="--", linewidth=1.2)
            ax.annotate("outlier threshold", (len(delta) - 0.5, line), xytext=(0, 3),
                        textcoords="offset points", ha="right", va="bottom", fontsize=8,
                        color=FLAGGED)
            top = max(max(delta, default=0.0), line)
            ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)
        ax.set_title(panel["title"], fontsize=10)
        ticks = [f"{k} {names[k]}" if k < len(names) and str(names[k]) != str(k) else str(k)
                 for k in range(len(delta))]
        ax.set_xticks(range(len(delta)), ticks, rotation=60, ha="right", fontsize=8)
    axes[0].set_ylabel("weight change Δ")
    from matplotlib.patches import Patch

    shown = {k for panel in panels for k in panel.get("candidates") or []} - marked
    key = [Patch(color=PLAIN, label="normal")]
    key += [Patch(color=CANDIDATE, label=candidate_label)] if shown else []
    key += [Patch(color=FLAGGED, label=flagged_label)] if marked else []
    _legend_on_top(fig, handles=key)
    return _png(fig)


def curves(panels: Sequence[dict], width: float = 9.0) -> str:
    """Line plots side by side.

    Args:
        panels: Each ``{"title", "ylabel", "series": [(label, xs, ys)], "percent": bool,
            "hline": (value, label) or None, "ylim": (lo, hi) or None, "legend": bool}``.
        width: Figure width in inches.
    """
    fig, axes = _figure(width, 3.0, max(1, len(panels)))
    for ax, panel in zip(axes, panels, strict=False):
        for label, xs, ys in panel["series"]:
            ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o",
                    markersize=3 if len(xs) > 8 else 6, label=label)
        if panel.get("hline"):
            value, label = panel["hline"]
            ax.axhline(value, color=FLAGGED, linestyle="--", linewidth=1.0, label=label)
        if panel.get("ylim"):
            ax.set_ylim(*panel["ylim"])
        if panel.get("percent"):
            _pct_axis(ax)
        ax.set_title(panel["title"], fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(panel.get("ylabel", ""))
        last = max((max(xs, default=0) for _, xs, _ in panel["series"]), default=0)
        if last <= 20:  # whole epochs only, and room around a lone point
            ax.set_xticks(range(1, last + 1) if last <= 10 else range(0, last + 1, 5))
            ax.set_xlim(0.5, last + 0.5)
        if len(panel["series"]) > 1 or panel.get("hline") or panel.get("legend"):
            ax.legend(frameon=False, fontsize=8)
    return _png(fig)


def timings(phases: Sequence[tuple[str, float]]) -> str:
    """Horizontal bars: seconds per phase, in the order they ran."""
    fig, (ax,) = _figure(7.0, 0.45 * max(2, len(phases)) + 0.8)
    names = [p for p, _ in phases][::-1]
    secs = [s for _, s in phases][::-1]
    ax.barh(names, secs, color=AFTER)
    for y, s in enumerate(secs):
        ax.annotate(f"{s:.1f} s", (s, y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=9)
    ax.set_xlim(0, max(secs, default=1.0) * 1.18 or 1.0)
    ax.set_xlabel("seconds")
    ax.grid(axis="x", alpha=0.3)
    ax.grid(axis="y", visible=False)
    return _png(fig)
