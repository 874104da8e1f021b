"""Turn ``results.jsonl`` into BENCHMARKS.md tables and an ASR-vs-ACC-drop plot.

    python benchmarks/report.py [--results benchmarks/results] [--md benchmarks/BENCHMARKS.md]

Numbers are mean ± std over seeds (and, for the summary, over cells too). ACC and ASR are
percentages; the ACC drop is ``ACC before − ACC after`` in percentage points.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
# A cell whose undefended model has a lower ASR than this carries no backdoor to remove: its
# rows would reward a defense for nothing, so the tables leave it out and list it apart.
MIN_IMPLANTED_ASR = 0.5
ORDER = ("ulrl-paper", "ulrl-auto", "ft", "fp", "rnp", "anp", "anp-200it", "ibau", "sau")


def model_key(row: dict) -> tuple:
    """The backdoored model a row was measured on: (data, attack, arch, seed)."""
    return row["data"], row["attack"], row["arch"], row["seed"]


def load(results: Path) -> list[dict]:
    lines = (results / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def ms(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    """``mean ± std`` (population std over seeds; ± 0 for one value)."""
    vals = [v * scale for v in values]
    mean = statistics.fmean(vals)
    std = statistics.pstdev(vals) if len(vals) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def defenses_in(rows: list[dict]) -> list[str]:
    seen = {r["defense"] for r in rows}
    return [d for d in ORDER if d in seen] + sorted(seen - set(ORDER))


def summary_table(rows: list[dict]) -> list[str]:
    out = [
        "| Defense | ACC % | ASR % | ACC drop (pp) | DER | Wall s | Peak +MiB | runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    first = {}
    for r in rows:
        first.setdefault(model_key(r), r)
    base = list(first.values())
    out.append(
        f"| no defense | {ms([r['acc0'] for r in base], 100)} | "
        f"{ms([r['asr0'] for r in base], 100)} | – | – | – | – | {len(base)} |"
    )
    for d in defenses_in(rows):
        rs = [r for r in rows if r["defense"] == d]
        cpu = [r for r in rs if on_cpu(r)]  # GPU rows' time and memory are another machine's
        cost = (
            f"{ms([r['wall_s'] for r in cpu])} | {ms([r['peak_mib'] for r in cpu], 1, 0)}"
            if cpu
            else "– (GPU) | –"
        )
        out.append(
            f"| {d} | {ms([r['acc'] for r in rs], 100)} | {ms([r['asr'] for r in rs], 100)} | "
            f"{ms([r['acc0'] - r['acc'] for r in rs], 100)} | {ms([r['der'] for r in rs], 1, 3)}"
            f" | {cost} | {len(rs)} |"
        )
    gpu = sum(not on_cpu(r) for r in rows)
    if gpu:
        out += ["", f"{gpu} of these {len(rows)} runs ran on CUDA: Wall s and Peak count CPU "
                "runs only."]  # fmt: skip
    return out


def on_cpu(row: dict) -> bool:
    """Whether the defense ran on the CPU (rows from before devices were recorded did)."""
    return row.get("device", "cpu") == "cpu"


def cell_table(rows: list[dict], metric: str) -> list[str]:
    """Rows: cells; columns: no defense + each defense; entries: ``metric`` mean ± std."""
    defs = defenses_in(rows)
    cells = defaultdict(lambda: defaultdict(list))
    base = defaultdict(dict)
    for r in rows:
        cell = (r["data"], r["attack"], r["arch"])
        cells[cell][r["defense"]].append(r)
        base[cell][r["seed"]] = r
    scale, digits = (1, 3) if metric == "der" else (100, 1)
    head = ["data", "attack", "arch"] + ([] if metric == "der" else ["no defense"]) + defs
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in sorted(cells):
        entries = list(cell)
        if metric != "der":
            entries.append(ms([r[f"{metric}0"] for r in base[cell].values()], scale, digits))
        for d in defs:
            rs = cells[cell].get(d)
            entries.append(ms([r[metric] for r in rs], scale, digits) if rs else "–")
        out.append("| " + " | ".join(entries) + " |")
    return out


def time_ratio(rows: list[dict]) -> list[str]:
    """Wall time of each ULRL preset over FT's, matched per (cell, seed), CPU runs only."""
    rows = [r for r in rows if on_cpu(r)]
    ft = {model_key(r): r["wall_s"]
          for r in rows if r["defense"] == "ft"}  # fmt: skip
    out = []
    for preset in ("ulrl-paper", "ulrl-auto"):
        ratios = [
            r["wall_s"] / ft[k]
            for r in rows
            if r["defense"] == preset
            and (k := model_key(r)) in ft
            and ft[k] > 0
        ]
        if ratios:
            out.append(
                f"- {preset} / ft: mean {statistics.fmean(ratios):.1f}×, median "
                f"{statistics.median(ratios):.1f}× over {len(ratios)} matched runs"
            )
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for i, d in enumerate(defenses_in(rows)):
        rs = [r for r in rows if r["defense"] == d]
        drop = [100 * (r["acc0"] - r["acc"]) for r in rs]
        asr = [100 * r["asr"] for r in rs]
        color = f"C{i}"
        ax.scatter(drop, asr, s=18, alpha=0.45, color=color)
        ax.scatter([statistics.fmean(drop)], [statistics.fmean(asr)], s=140, marker="*",
                   color=color, edgecolor="black", label=f"{d} (mean ★)")  # fmt: skip
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("ACC drop (percentage points; lower is better)")
    ax.set_ylabel("ASR after defense (%; lower is better)")
    ax.set_title("Defenses: ASR vs ACC drop (dots: runs, stars: means)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def where_ulrl_loses(rows: list[dict]) -> list[str]:
    """Cells where the best ULRL preset has a lower mean DER than some peer."""
    by = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by[(r["data"], r["attack"], r["arch"])][r["defense"]].append(r["der"])
    out = []
    for cell, defs in sorted(by.items()):
        mean = {d: statistics.fmean(v) for d, v in defs.items()}
        ulrl = {d: v for d, v in mean.items() if d.startswith("ulrl")}
        peers = {d: v for d, v in mean.items() if not d.startswith("ulrl")}
        if not ulrl or not peers:
            continue
        best_u = max(ulrl, key=ulrl.get)
        best_p = max(peers, key=peers.get)
        if peers[best_p] > ulrl[best_u] + 1e-9:
            out.append(
                f"- {'/'.join(cell)}: {best_p} DER {peers[best_p]:.3f} > "
                f"{best_u} DER {ulrl[best_u]:.3f}"
            )
    return out or ["- none: a ULRL preset has the best mean DER in every cell"]


def matched(rows: list[dict]) -> list[dict]:
    """The rows of the (cell, seed) runs on which every defense in ``rows`` ran.

    A defense run on a subset only (ANP skipped somewhere, a ViT seed missing) would
    otherwise be averaged over other models than its peers.
    """
    defs = set(defenses_in(rows))
    ran = defaultdict(set)
    for r in rows:
        ran[model_key(r)].add(r["defense"])
    keep = {k for k, d in ran.items() if d == defs}
    return [r for r in rows if model_key(r) in keep]


def runs_per_defense(rows: list[dict]) -> dict[str, set]:
    """The models (see :func:`model_key`) each defense ran on."""
    ran = defaultdict(set)
    for r in rows:
        ran[r["defense"]].add(model_key(r))
    return ran


def partial_defenses(rows: list[dict]) -> list[str]:
    """Defenses run on fewer models than the most-run one (variants tried on a few cells)."""
    ran = runs_per_defense(rows)
    most = max((len(v) for v in ran.values()), default=0)
    return [d for d in defenses_in(rows) if len(ran[d]) < most]


def partial_summaries(rows: list[dict]) -> list[str]:
    """Each partial variant beside the complete defenses, on the models it ran on."""
    partial = partial_defenses(rows)
    if not partial:
        return []
    ran = runs_per_defense(rows)
    out = ["## Variants run on some models only", ""]
    for d in partial:
        on = ran[d]
        group = [r for r in rows if r["defense"] not in partial or r["defense"] == d]
        group = [r for r in group if model_key(r) in on]
        out += [f"### {d} ({len(on)} models)", "", *summary_table(matched(group)), ""]
    return out


def per_group_summaries(rows: list[dict]) -> list[str]:
    """The summary table again for each data set and each architecture (all their runs)."""
    out = []
    for key in ("data", "arch"):
        names = sorted({r[key] for r in rows})
        if len(names) < 2:
            continue
        for name in names:
            group = [r for r in rows if r[key] == name]
            out += [f"### {key} = {name}", "", *summary_table(group), ""]
    return out


def hand_notes(notes: Path) -> list[str]:
    """Hand-written notes kept in their own file (``NOTES.md``), so reruns keep them."""
    if not notes.exists():
        return []
    return ["", notes.read_text().rstrip(), ""]


def implanted(row: dict) -> bool:
    """Whether the row's undefended model carried the backdoor (it counts in the tables)."""
    return row["asr0"] >= MIN_IMPLANTED_ASR and not is_clean(row)


def is_clean(row: dict) -> bool:
    """A model trained with nothing poisoned (``--attacks clean``)."""
    return row["attack"] == "clean"


def clean_models(rows: list[dict]) -> list[str]:
    """Per clean model and defense: what it flagged and what it cost."""
    clean = sorted((r for r in rows if is_clean(r)), key=lambda r: (
        r["data"], r["arch"], r["seed"], defenses_in(rows).index(r["defense"])))  # fmt: skip
    if not clean:
        return ["- none run (`--attacks clean`)"]
    out = [
        "| data | arch | seed | defense | ACC before % | ACC after % | drop (pp) | flagged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in clean:
        flagged = ", ".join(str(k) for k in r.get("flagged") or []) or "nothing"
        out.append(
            f"| {r['data']} | {r['arch']} | {r['seed']} | {r['defense']} | "
            f"{100 * r['acc0']:.1f} | {100 * r['acc']:.1f} | "
            f"{100 * (r['acc0'] - r['acc']):.1f} | {flagged} |"
        )
    return out


def not_implanted(rows: list[dict]) -> list[str]:
    """The (cell, seed) runs left out of the tables because the attack did not take."""
    seen = {}
    for r in rows:
        if not implanted(r) and not is_clean(r):
            seen[model_key(r)] = r
    if not seen:
        return ["- none"]
    return [
        f"- {d}/{a}/{arch} seed {s}: ASR {100 * r['asr0']:.1f}%, ACC {100 * r['acc0']:.1f}%"
        for (d, a, arch, s), r in sorted(seen.items())
    ]


def clean_data_words(plan: dict, row: dict) -> str:
    """How the defender's clean images were chosen, for the protocol paragraph."""
    source = (
        f"{plan['n_clean']} images of the training set's remainder (`--n-clean`)"
        if plan.get("n_clean")
        else "1% of the training subset, at least 10 per class"
    )
    return (
        f"{source} ({row['n_clean']} images, split 80/20 into purify ({row['n_purify']}) "
        "and holdout as `ulrl-edge purify` does)"
    )


def write(results: Path, md: Path, png: Path, notes: Path) -> None:
    everything = load(results)
    rows = [r for r in everything if implanted(r)]
    partial = partial_defenses(rows)
    complete = [r for r in rows if r["defense"] not in partial]
    run = json.loads((results / "run.json").read_text()) if (results / "run.json").exists() else {}
    plot(rows, png)
    mode = run.get("mode", "?").upper()
    plan = run.get("plan", {})
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        f"# Benchmarks — {mode} run"
        + (" (not the full run)" if mode == "QUICK" else ""),
        "",
        f"Command: `python {run.get('command', 'benchmarks/run.py')}` then "
        "`python benchmarks/report.py`.",
        "",
        f"Machine: {run.get('machine', '?')}. Started {run.get('started', '?')}.",
        "",
        f"Plan: data {plan.get('data')}, attacks {plan.get('attacks')}, archs "
        f"{plan.get('archs')}, defenses {plan.get('defenses')}, seeds {seeds}; backdoored "
        f"models trained on {plan.get('n_train')} images for {plan.get('epochs')} epochs "
        f"(the ViT {plan.get('vit_epochs', plan.get('epochs'))}), "
        f"10% poisoning, all-to-one to class 0; ACC/ASR on {plan.get('n_test')} held-out "
        "test images.",
        "",
        "Protocol: each backdoored model is exported to ONNX (`torch.onnx.export`, "
        "dynamo=False) and re-imported (`load_model` → `import_model`), as a vendor model "
        "would be. Each defense runs with its default config (ULRL with both presets) on "
        f"the clean data: {clean_data_words(plan, rows[0])}. The defended model is exported with "
        "`export_model` and measured by onnxruntime (`ulrl_edge.verify.evaluate`).",
        "",
        "- DER = (max(0, ΔASR) − max(0, ACC drop) + 1) / 2 (BackdoorBench); higher is "
        "better, 0.5 = no change.",
        "- Wall s: the defense call alone (no export/evaluation), torch on the CPU threads "
        "shown above. Runs made on a GPU (rows with `device: cuda`; see the notes) count in "
        "ACC/ASR/DER but not in Wall s, Peak or the time ratio.",
        "- Peak +MiB: peak resident set size during the defense call minus the RSS just "
        "before it (after glibc malloc_trim; sampled every 5 ms from /proc/self/statm); "
        "not tracemalloc, which "
        "misses torch tensors.",
        "- mean ± std over seeds" + (" (one seed here, so std is 0 per cell)" if len(seeds) == 1
                                     else "") + "; the summary also averages over cells.",
        "",
        "## Summary over the runs every defense ran on",
        "",
        *summary_table(matched(complete)),
        "",
        *partial_summaries(rows),
        *per_group_summaries(complete),
        "## ULRL / FT wall-time ratio",
        "",
        *time_ratio(rows),
        "",
        "## ASR % per cell (lower is better)",
        "",
        *cell_table(rows, "asr"),
        "",
        "## ACC % per cell",
        "",
        *cell_table(rows, "acc"),
        "",
        "## DER per cell (higher is better)",
        "",
        *cell_table(rows, "der"),
        "",
        "## Where ULRL loses (a peer has a higher mean DER than both ULRL presets' best)",
        "",
        *where_ulrl_loses(rows),
        "",
        f"![ASR vs ACC drop]({png.name})",
        "",
        f"## Left out: the attack did not implant (undefended ASR < "
        f"{100 * MIN_IMPLANTED_ASR:.0f}%)",
        "",
        *not_implanted(everything),
        "",
        "## Clean models (trained with nothing poisoned): what each defense flagged",
        "",
        *clean_models(everything),
        "",
        *hand_notes(notes),
    ]  # fmt: skip
    tmp = md.with_suffix(".tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(md)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=HERE / "results")
    p.add_argument("--md", type=Path, default=HERE / "BENCHMARKS.md")
    p.add_argument("--png", type=Path, default=None, help="default: beside --md")
    p.add_argument("--notes", type=Path, default=None, help="default: NOTES.md beside --md")
    a = p.parse_args(argv)
    png = a.png or a.md.with_name("asr_vs_acc_drop.png")
    write(a.results, a.md, png, a.notes or a.md.with_name("NOTES.md"))
    print(f"wrote {a.md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
