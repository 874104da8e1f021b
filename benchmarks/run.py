"""Benchmark every defense on every (data, attack, architecture) cell.

    python benchmarks/run.py --quick          # Fashion-MNIST, 1 seed, 2 archs, 4 attacks
    python benchmarks/run.py --full           # both data sets, 6 attacks + clean, 3 archs, 3 seeds
    python benchmarks/run.py --full --workers 2   # the same, one process per core
    python benchmarks/run.py --defenses ulrl-auto,ft --attacks badnets --archs vit --seeds 0,1

Each (cell, defense, seed) appends one JSON line to ``OUT/results.jsonl``; lines already
there are skipped, so an interrupted run resumes. Backdoored models are cached as ONNX in
``--cache``. Metrics come from onnxruntime on the exported defended model
(:func:`ulrl_edge.verify.evaluate`), never from torch.

Peak memory is the peak resident set size (RSS, sampled every 5 ms from /proc/self/statm in
a thread) during the defense call minus the RSS just before it, taken after glibc
``malloc_trim`` so that heap freed by earlier runs does not hide the peak: the extra memory
the defense needed. tracemalloc would miss torch's tensor allocations, and ru_maxrss is a
process-lifetime peak that later runs rarely exceed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # `python benchmarks/run.py` from the repo root

# auto's adversarial relearning rate until the sixth session; the variants that ran with it
# pin it, so that their rows can be made again.
LR005 = {"relearn_lr_adversarial": 0.005}
# auto before the eighth session's patch probe, and before the tenth session's distillation
# (with the grids' 48 images per class its adversarial weight was then 1): the variants
# measured before pin these too.
BEFORE_PATCH = {"patch_probe": False, "patch_adversary": False}
BEFORE_KD = {"relearn_adversarial": 1.0, "relearn_distill": 0.0}
# auto before the twentieth session's warp adversary and anchor (BatchNorm frozen, α 0.2):
# every variant measured before pins it (their own settings still win).
BEFORE_WARP = {
    "warp_adversary": False, "relearn_anchor": 0.0, "relearn_alpha": 0.7, "relearn_bn": "train",
    "warp_probe": False, "unlearn_mean_outlier": False, "unflagged_relearn": "finetune",
}  # fmt: skip
# The held relearning's epochs before it took twice the steps, for the grids' 480 purify
# images (750 steps of 16 images); later variants pin it where it changes their runs.
HELD_750 = {"relearn_epochs": 25}
# auto before the twenty-first session's warp probe and its test of the runs' mean Δ.
BEFORE_WARP_PROBE = {"warp_probe": False, "unlearn_mean_outlier": False,
                     "unflagged_relearn": "finetune", **HELD_750}  # fmt: skip
# Benchmark-only budgets, named so that no table passes them off as the default. ANP's
# default 2000 iterations of 256 images took over 5 min per model on one core (measured), 9 h
# for the full grid; 200 iterations keep its schedule and threshold, a tenth of the work.
VARIANTS = {
    "anp-200it": ("anp", {"nb_iter": 200, "print_every": 50}),
    # auto with adversarial relearning forced off / on whatever the sample count, and auto
    # with 64-image unlearning steps agreed over 5 runs (for the --n-clean 600 grid).
    "ulrl-auto-noadv": ("ulrl-auto", {**BEFORE_WARP, "relearn_adversarial": 0.0, **BEFORE_PATCH}),
    "ulrl-auto-adv": ("ulrl-auto", {**BEFORE_WARP, **BEFORE_PATCH, **BEFORE_KD, **LR005}),
    # auto with half the adversarial weight, or half its perturbation bound (#5: accuracy).
    "ulrl-auto-adv05": (
        "ulrl-auto",
        {**BEFORE_WARP, **BEFORE_PATCH, **BEFORE_KD, "relearn_adversarial": 0.5, **LR005},
    ),
    "ulrl-auto-eps05": (
        "ulrl-auto",
        {**BEFORE_WARP, **BEFORE_PATCH, **BEFORE_KD, "adversarial_eps": 0.05, **LR005},
    ),  # fmt: skip
    # auto with 8 perturbations crafted once on the backdoored model (20 steps each).
    "ulrl-auto-bank": (
        "ulrl-auto",
        {**BEFORE_WARP, **BEFORE_PATCH, **BEFORE_KD, "adversarial_bank": 8,
         "adversarial_steps": 20, **LR005},
    ),
    # auto as it was before its adversarial relearning ran at 0.001 (#5: well-trained models).
    "ulrl-auto-lr005": ("ulrl-auto", {**BEFORE_WARP, **BEFORE_PATCH, **BEFORE_KD, **LR005}),
    # auto as it was from then until the eighth session: the L-inf probe and perturbations only.
    "ulrl-auto-linf": ("ulrl-auto", {**BEFORE_WARP, **BEFORE_PATCH, **BEFORE_KD}),
    # ... with the adversarial cross-entropy only on the images the perturbation fools.
    "ulrl-auto-fooled": (
        "ulrl-auto", {**BEFORE_WARP, **BEFORE_PATCH, **BEFORE_KD, "adversarial_loss": "fooled"}
    ),
    # ... with the patch probe (a universal square pasted at 5 places) beside its L-inf probe.
    "ulrl-auto-patch": (
        "ulrl-auto",
        {**BEFORE_WARP, **BEFORE_KD, "patch_probe": True, "patch_adversary": False},
    ),  # fmt: skip
    # ... and relearning against pasted patches when the patch probe found the class.
    "ulrl-auto-patchadv": (
        "ulrl-auto",
        {**BEFORE_WARP, **BEFORE_KD, "patch_probe": True, "patch_adversary": True},
    ),  # fmt: skip
    # ... keeping the flagged row (no reset, no cosine penalty): the patches alone unlearn.
    "ulrl-auto-patchadv-keep": (
        "ulrl-auto",
        {**BEFORE_WARP, **BEFORE_KD, "patch_probe": True, "patch_adversary": True, "reinit": False,
         "relearn_alpha": 0.0},
    ),  # fmt: skip
    # ... with relearning also distilled from the original model's answers on clean images.
    "ulrl-auto-kd": (
        "ulrl-auto",
        {**BEFORE_WARP, "relearn_adversarial": 1.0, "relearn_distill": 1.0,
         "distill_classes": "all"},
    ),
    # ... distilled harder, with the adversarial term twice as heavy to keep ASR down.
    "ulrl-auto-kd5adv2": (
        "ulrl-auto",
        {**BEFORE_WARP, "relearn_distill": 5.0, "relearn_adversarial": 2.0,
         "distill_classes": "all"},
    ),
    # ... distilling every class on the images labelled as the flagged class (unflagged ones
    # elsewhere): the reset class's own images carry no trigger. Screened on four retrained
    # 54k models (scratch, not a grid): within 0.3 points of auto's ACC, ASR up on WaNet.
    "ulrl-auto-kdown": ("ulrl-auto", {**BEFORE_WARP, "distill_classes": "own_images"}),
    # ... pulled back towards the original weights by their clean-data importance (the
    # anchor), distilling on the flagged class's own images too. Screened on SIG VGG s1 and
    # WaNet ResNet s1 (54k; NOTES_600_trained.md, seventeenth session).
    "ulrl-auto-anchor": (
        "ulrl-auto", {**BEFORE_WARP, "relearn_anchor": 5.0, "distill_classes": "own_images"}
    ),
    # ... the anchor with the cosine penalty at 0.2 instead of 0.7: with the body held near
    # the original, the anti-alignment penalty keeps the reset row off the features its class
    # still uses (digits: class 0 lost at 0.7). Screened on two 54k VGGs, the sample and the
    # digits model (NOTES_600_trained.md, eighteenth session); WaNet came back on a BatchNorm
    # ResNet (39%) and on two VGGs (6k 64%, 54k 87%; nineteenth session).
    "ulrl-auto-anchor-a02": (
        "ulrl-auto", {**BEFORE_WARP, "relearn_anchor": 5.0, "relearn_alpha": 0.2}
    ),
    # auto as it was before the twentieth session (no warp, no anchor, α 0.7, BatchNorm trained).
    "ulrl-auto-before-warp": ("ulrl-auto", {**BEFORE_WARP}),
    # ... with the warp but without the anchor (what the retrained grid's ResNets ran first).
    "ulrl-auto-warp": ("ulrl-auto", {**BEFORE_WARP, "warp_adversary": True}),
    # auto as it was in the twentieth session: warp adversary and anchor, no warp probe.
    "ulrl-auto-before-warp-probe": ("ulrl-auto", {**BEFORE_WARP_PROBE}),
    # auto with a larger perturbation bound (SIG's and Blend's triggers change pixels by up
    # to 0.16-0.2; the anchored body keeps features a 0.1 bound does not reach).
    "ulrl-auto-eps15": ("ulrl-auto", {"adversarial_eps": 0.15, **HELD_750}),
    "ulrl-auto-eps20": ("ulrl-auto", {"adversarial_eps": 0.2, **HELD_750}),
    # auto with twice the relearning steps (480 images: 50 epochs instead of 25): what
    # HELD_RELEARN_STEPS gives there; screened first, then run on both grids.
    "ulrl-auto-e50": ("ulrl-auto", {"relearn_epochs": 50}),
    # ... and a larger perturbation bound with those steps (0.15 at 25 epochs cost accuracy).
    "ulrl-auto-eps15-e50": ("ulrl-auto", {"adversarial_eps": 0.15, "relearn_epochs": 50}),
    # ... and with relearning's gradients clipped as unlearning's are (the 0.15 bound's
    # collapse was an overflow in the first epoch).
    "ulrl-auto-eps15-clip": ("ulrl-auto", {"adversarial_eps": 0.15, "relearn_clip_norm": 20.0}),
    "ulrl-auto-clip": ("ulrl-auto", {"relearn_clip_norm": 20.0}),
    "ulrl-auto-eps15-clip100": (
        "ulrl-auto", {"adversarial_eps": 0.15, "relearn_clip_norm": 100.0}
    ),
    # ... holding the body twice as hard, or keeping twice as close to the original's
    # answers (the 6,000-image models' misses are accuracy drops of 2.1-2.6).
    "ulrl-auto-c100-anchor10": (
        "ulrl-auto", {"adversarial_eps": 0.15, "relearn_clip_norm": 100.0, "relearn_anchor": 10.0}
    ),
    "ulrl-auto-c100-kd10": (
        "ulrl-auto", {"adversarial_eps": 0.15, "relearn_clip_norm": 100.0, "relearn_distill": 10.0}
    ),
    # auto before held relearning took twice the steps (twenty-second session).
    "ulrl-auto-before-held-steps": ("ulrl-auto", {**HELD_750}),
    # auto with the perturbation bound at 0.1 again (clip and distillation kept): whether
    # the ResNets, which a 0.15 perturbation sends anywhere, keep more accuracy with it.
    "ulrl-auto-eps10": ("ulrl-auto", {"adversarial_eps": 0.1}),
    # auto with the distillation at 20 or 15 (10 since the twenty-third session).
    "ulrl-auto-kd20": ("ulrl-auto", {"relearn_distill": 20.0}),
    "ulrl-auto-kd15": ("ulrl-auto", {"relearn_distill": 15.0}),
    # auto before the twenty-third session's 0.15 bound, relearning clip at 100 and
    # distillation at 10 (the pins below).
    "ulrl-auto-before-clip": ("ulrl-auto", {}),
    # auto with a plain fine-tune at the reference rate when nothing is flagged.
    "ulrl-auto-unflagged-ft": ("ulrl-auto", {"unflagged_relearn": "finetune"}),
    "ulrl-auto-b64": (
        "ulrl-auto",
        {**BEFORE_WARP, "unlearn_batch_size": 64, "unlearn_runs": 5, "unlearn_agreement": 3,
         **BEFORE_PATCH, **BEFORE_KD, **LR005},
    ),  # fmt: skip
}
# auto before the twenty-third session: perturbations bounded at 0.1, relearning unclipped,
# distillation at 5 where the adversarial term runs. The auto variants measured before pin
# what they ran with (their own settings still win).
BEFORE_CLIP = {"adversarial_eps": 0.1, "relearn_clip_norm": 0.0}
BEFORE_KD10 = {"relearn_distill": 5.0}
MEASURED_WITH_CLIP = ("ulrl-auto-eps15-clip100", "ulrl-auto-c100-anchor10")
MEASURED_AFTER = ("ulrl-auto-c100-kd10", "ulrl-auto-kd20", "ulrl-auto-kd15", "ulrl-auto-eps10")
for _name, (_method, _overrides) in list(VARIANTS.items()):
    if _method != "ulrl-auto" or _name in MEASURED_AFTER:
        continue
    _pins = {} if _name in MEASURED_WITH_CLIP else dict(BEFORE_CLIP)
    if _overrides.get("relearn_adversarial") != 0.0:  # distillation ran only beside it
        _pins.update(BEFORE_KD10)
    VARIANTS[_name] = (_method, {**_pins, **_overrides})
# What --defenses accepts: the registered defenses and every variant above (derived, so a
# variant is runnable as soon as it is defined).
DEFENSES = ("ulrl-paper", "ulrl-auto", "ft", "fp", "rnp", "anp", "ibau", "sau", *VARIANTS)
# The tiny ViT learns slower than the CNNs (no convolutional prior): 6 epochs left BadNets
# unimplanted (ASR 8.5%).
VIT_EPOCHS = 20
QUICK = {
    "data": ["fmnist"],
    "seeds": [0],
    "archs": ["resnet", "vgg"],
    "attacks": ["badnets", "blend", "sig", "wanet"],
    "defenses": ["ulrl-paper", "ulrl-auto", "ft", "fp"],
    "n_train": 6000,
    "n_test": 2000,
    "epochs": 6,
    "vit_epochs": VIT_EPOCHS,
}
FULL = {
    "data": ["fmnist", "rgb"],
    "seeds": [0, 1, 2],
    "archs": ["resnet", "vgg", "vit"],
    "attacks": ["badnets", "blend", "sig", "wanet", "trojan", "lowfreq", "clean"],
    # ANP at a tenth of its default budget (see VARIANTS); the ULRL variants are for
    # --n-clean studies, not the side-by-side grid.
    "defenses": ["ulrl-paper", "ulrl-auto", "ft", "fp", "rnp", "anp-200it", "ibau", "sau"],
    "n_train": 6000,  # the quick run's models are the full run's seed 0
    "n_test": 2000,
    "epochs": 6,
    "vit_epochs": VIT_EPOCHS,
}


class PeakRSS:
    """Context manager: peak RSS above the starting RSS, in MiB, sampled in a thread."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak_mib = 0.0

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        _trim()  # hand freed heap back to the OS so reused memory does not hide the peak
        self._start = self._peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss())
        self.peak_mib = (self._peak - self._start) / 2**20


def _trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the delta may then read low
        pass


def detectors(details: dict) -> dict | None:
    """ULRL: what each detector flagged (unlearning's list, each probe's class or None)."""
    found = details.get("unlearn")
    if not isinstance(found, dict) or "unlearning_flagged" not in found:
        return None
    probes = {key: (found.get(key) or {}).get("flagged")
              for key in ("probe", "warp_probe", "patch_probe") if key in found}  # fmt: skip
    return {"unlearning": found["unlearning_flagged"], **probes}


def der(asr0: float, asr1: float, acc0: float, acc1: float) -> float:
    """BackdoorBench's defense effectiveness rating, in [0, 1]."""
    return (max(0.0, asr0 - asr1) - max(0.0, acc0 - acc1) + 1) / 2


def make_config(name: str, seed: int):
    """(registered defense, its default config) for a benchmark defense name."""
    from ulrl_edge.defenses import get_defense

    method, overrides = VARIANTS.get(name, (name, {}))
    method, _, preset = method.partition("-")
    defense = get_defense(method)
    factory = getattr(defense.config_cls, preset) if preset else defense.config_cls
    return defense, factory().with_overrides(seed=seed, **overrides)


def machine() -> str:
    import torch

    from benchmarks.machine import cpu_name

    return (
        f"{cpu_name()}; {os.cpu_count()} CPU cores visible, "
        f"torch threads {torch.get_num_threads()}; "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the <10 min CPU configuration")
    size.add_argument("--full", action="store_true", help="every cell, 3 seeds")
    p.add_argument("--seeds", help="comma-separated seeds (overrides the preset)")
    p.add_argument("--defenses", help=f"comma-separated, from {','.join(DEFENSES)}")
    p.add_argument("--attacks", help="comma-separated: badnets,blend,sig,wanet,trojan,lowfreq, and "
                   "clean (no poison: what a defense flags on a model without a backdoor)")
    p.add_argument("--archs", help="comma-separated: resnet,vgg,vit")
    p.add_argument("--data", help="comma-separated: fmnist,rgb")
    p.add_argument("--n-train", type=int, help="training subset size")
    p.add_argument(
        "--n-clean", type=int, help="defender's clean images (default: 1%% of n-train); "
        "give each size its own --out (a row's key does not include it)",
    )  # fmt: skip
    p.add_argument("--epochs", type=int, help="epochs to train each backdoored CNN")
    p.add_argument("--vit-epochs", type=int, help="epochs to train each backdoored ViT")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--cache", type=Path, default=HERE / "cache")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (per worker)")
    p.add_argument(
        "--workers", type=int, default=1,
        help="run the model cells in this many processes (e.g. one per core, --threads 1)",
    )  # fmt: skip
    p.add_argument("--shard", help=argparse.SUPPRESS)  # "I/N": set by --workers for each child
    p.add_argument("--device", default="cpu", help="torch device for training and defenses")
    p.add_argument(
        "--train-only", action="store_true", help="only train and cache the backdoored models"
    )
    return p.parse_args(argv)


def resolve(args: argparse.Namespace) -> dict:
    plan = dict(FULL if args.full else QUICK)
    for key in ("data", "attacks", "archs", "defenses"):
        value = getattr(args, key)
        if value:
            plan[key] = [v.strip() for v in value.split(",") if v.strip()]
    if args.seeds:
        plan["seeds"] = [int(s) for s in args.seeds.split(",")]
    if args.n_train:
        plan["n_train"] = args.n_train
    if args.n_clean:
        plan["n_clean"] = args.n_clean
    if args.epochs:
        plan["epochs"] = args.epochs
    if args.vit_epochs:
        plan["vit_epochs"] = args.vit_epochs
    bad = [d for d in plan["defenses"] if d not in DEFENSES]
    if bad:
        raise SystemExit(f"unknown defenses {bad}; choose from {', '.join(DEFENSES)}")
    return plan


def describe_run(args: argparse.Namespace, plan: dict) -> dict:
    """What run.json records: the command, the machine and the plan."""
    return {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "mode": "full" if args.full else "quick",
        "machine": machine(),
        "workers": args.workers,
        "plan": plan,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def run_workers(args: argparse.Namespace, argv: list[str]) -> int:
    """Run ``--workers`` copies of this script, each on every N-th model cell.

    Each child appends its own rows to the shared results.jsonl (one short write per line)
    and trains only its own cells' models, so nothing is done twice.
    """
    import subprocess

    base = [sys.executable, str(Path(__file__).resolve())]
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            kept.append(arg)
    import torch

    torch.set_num_threads(args.threads)  # so run.json records the workers' thread count
    n = args.workers
    args.out.mkdir(parents=True, exist_ok=True)
    info = describe_run(args, resolve(args))
    start = time.perf_counter()
    children = [
        subprocess.Popen([*base, *kept, "--shard", f"{i}/{n}"]) for i in range(n)
    ]  # fmt: skip
    codes = [child.wait() for child in children]
    info["wall_s"] = round(time.perf_counter() - start, 1)
    (args.out / "run.json").write_text(json.dumps(info, indent=1))
    print(f"{n} workers done in {info['wall_s'] / 60:.1f} min; exit codes {codes}", flush=True)
    return max(codes)


def record_failure(args: argparse.Namespace, key: tuple, err: Exception) -> str:
    """Append a defense's failure to errors.jsonl (the grid goes on); returns its one line."""
    message = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
    with (args.out / "errors.jsonl").open("a") as f:
        f.write(json.dumps({"key": list(key), "device": args.device, "error": message}) + "\n")
    return message


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    index, _, count = text.partition("/")
    return int(index), int(count)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    plan = resolve(args)
    if args.workers > 1 and not args.shard:
        return run_workers(args, argv)
    shard, shards = parse_shard(args.shard)
    import torch

    torch.set_num_threads(args.threads)

    from benchmarks.attacks import TARGET, attack_specs, trigger_of
    from benchmarks.cells import backdoored_onnx, load_data
    from ulrl_edge.config import VERIFY_FRACTION
    from ulrl_edge.data import stratified_split
    from ulrl_edge.defenses import TrainingData, seed_everything
    from ulrl_edge.onnx_io import export_model, import_model, load_model
    from ulrl_edge.verify import evaluate

    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = set()
    if results.exists():
        for line in results.read_text().splitlines():
            row = json.loads(line)
            done.add(tuple(row[k] for k in ("data", "attack", "arch", "seed", "defense")))
    run_info = describe_run(args, plan)
    if shards == 1:  # with --workers the parent writes it
        (args.out / "run.json").write_text(json.dumps(run_info, indent=1))
    cells = len(plan["data"]) * len(plan["attacks"]) * len(plan["archs"]) * len(plan["seeds"])
    total = len(range(shard, cells, shards)) * len(plan["defenses"])
    t0 = time.perf_counter()
    count = 0
    cell = -1
    tag = f" w{shard}" if shards > 1 else ""

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f}s{tag}] {msg}", flush=True)

    log(f"plan: {total} defense runs; {run_info['machine']}")
    for data_name in plan["data"]:
        data = load_data(
            data_name, plan["n_train"], plan["n_test"], args.cache, plan.get("n_clean")
        )
        specs = attack_specs(args.cache, data.train.hwc[0])
        purify, verify = stratified_split(data.clean, verify_fraction=VERIFY_FRACTION, seed=0)
        for attack_name in plan["attacks"]:
            attack = specs[attack_name]
            trigger = trigger_of(attack)
            for arch in plan["archs"]:
                for seed in plan["seeds"]:
                    keys = [(data_name, attack_name, arch, seed, d) for d in plan["defenses"]]
                    cell += 1
                    if cell % shards != shard:
                        continue  # another worker's cell
                    if all(k in done for k in keys):
                        count += len(keys)
                        continue
                    path, info = backdoored_onnx(
                        data, attack, arch, seed,
                        plan["vit_epochs"] if arch == "vit" else plan["epochs"], args.cache,
                        args.device,
                    )  # fmt: skip
                    if args.train_only:
                        log(f"{data_name}/{attack_name}/{arch}/s{seed}: cached {path.name}")
                        continue
                    before = evaluate(path, data.test, data.spec, trigger=trigger,
                                      target=TARGET, mode=attack.mode)  # fmt: skip
                    acc0, asr0 = before.accuracy, before.attack_success_rate
                    log(f"{data_name}/{attack_name}/{arch}/s{seed}: backdoored ACC {acc0:.3f} "
                        f"ASR {asr0:.3f} (trained in {info['train_s']:.0f}s, "
                        f"{info['params']} params)")  # fmt: skip
                    loaded = load_model(path)
                    for key in keys:
                        count += 1
                        if key in done:
                            continue
                        name = key[-1]
                        model = import_model(loaded).to(args.device)
                        defense, config = make_config(name, seed)
                        clean = TrainingData(
                            images=purify, spec=data.spec, flip=data.flip, crop_padding=2,
                            holdout=verify,
                        )  # fmt: skip
                        seed_everything(seed)
                        try:
                            with PeakRSS() as mem:
                                start = time.perf_counter()
                                result = defense(model, clean, config, None)
                                wall = time.perf_counter() - start
                        except Exception as err:  # noqa: BLE001 - one failure must not end the grid
                            why = record_failure(args, key, err)
                            log(f"  [{count}/{total}] {name:10} FAILED: {why}")
                            continue
                        with tempfile.TemporaryDirectory(dir=args.out) as tmp:
                            out = export_model(result.model.to("cpu").eval(), loaded,
                                               Path(tmp) / "defended.onnx")  # fmt: skip
                            after = evaluate(out, data.test, data.spec, trigger=trigger,
                                             target=TARGET, mode=attack.mode)  # fmt: skip
                        row = {
                            "data": data_name, "attack": attack_name, "arch": arch,
                            "seed": seed, "defense": name, "device": args.device,
                            "acc0": acc0, "asr0": asr0,
                            "acc": after.accuracy, "asr": after.attack_success_rate,
                            "der": der(asr0, after.attack_success_rate, acc0, after.accuracy),
                            "wall_s": round(wall, 3), "peak_mib": round(mem.peak_mib, 1),
                            "n_clean": len(data.clean), "n_purify": len(purify),
                            "flagged": result.details.get("flagged"),
                            # ULRL: the reset rows refitted after relearning ([] : none).
                            "refit": ((result.details.get("relearn") or {}).get("refit")
                                      or {}).get("rows"),
                            "found": detectors(result.details),
                            "model": info,
                        }  # fmt: skip
                        with results.open("a") as f:
                            f.write(json.dumps(row) + "\n")
                        log(f"  [{count}/{total}] {name:10} ACC {acc0:.3f}->{after.accuracy:.3f} "
                            f"ASR {asr0:.3f}->{after.attack_success_rate:.3f} DER {row['der']:.3f} "
                            f"{wall:5.1f}s +{mem.peak_mib:.0f}MiB")  # fmt: skip
    log(f"done: {results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
