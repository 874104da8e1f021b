"""The verdict a person reads first: was the backdoor removed, was accuracy kept, did the
gate pass. Derived from a report dict (``report.json``); nothing here is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ulrl_edge.config import CLASS_LOST_DROP

# Without a gate on the ASR, an attack that still succeeds on at most this share of the
# triggered images counts as removed (a clean 10-class model sends a few images anywhere).
ASR_REMOVED = 0.10
# A class is judged given up (by CLASS_LOST_DROP) only from at least this many held-out images.
CLASS_LOST_MIN_IMAGES = 5
_RANK = {"bad": 3, "warn": 2, "good": 1, "info": 0}


@dataclass(frozen=True)
class Finding:
    """One line of the verdict: ``status`` is good, bad, warn or info."""

    status: str
    title: str
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The headline, its overall status (the worst finding's) and the findings."""

    headline: str
    status: str
    findings: list[Finding] = field(default_factory=list)


def pct(value) -> str:
    """0.858 → ``85.8%``; None → ``—``."""
    return "—" if value is None else f"{100 * value:.1f}%"


def class_label(report: dict, k) -> str:
    """``0 (t-shirt_top)`` for class index k, from the report's class names."""
    names = (report.get("data") or {}).get("classes") or []
    if k is None:
        return "—"
    if isinstance(k, int) and 0 <= k < len(names) and str(names[k]) != str(k):
        return f"{k} ({names[k]})"
    return str(k)


def _worst(findings: list[Finding]) -> str:
    return max((f.status for f in findings), key=_RANK.__getitem__, default="info")


def verdict(report: dict) -> Verdict:
    """The verdict for a purify, scan or verify report."""
    command = report.get("command")
    if command == "scan":
        return _scan(report)
    if command == "verify":
        return _verify(report)
    return _purify(report)


def _asr_finding(report: dict, before: dict, after: dict | None, limit: float) -> Finding:
    b = before.get("attack_success_rate")
    a = after.get("attack_success_rate") if after is not None else None
    target = class_label(report, before.get("target"))
    if b is None:
        return Finding("info", "Backdoor: not measured",
                       "No trigger was given (--trigger, --target), so the attack success "
                       "rate could not be measured.")
    if b <= limit:
        return Finding("warn", "The given trigger does not work on the original model",
                       f"Only {pct(b)} of triggered images went to class {target}. Either this "
                       "model has no such backdoor or the trigger or target is wrong, so this "
                       "run cannot show that a backdoor was removed.")
    if a is None:
        return Finding("bad", "Backdoor present",
                       f"The trigger sends {pct(b)} of images to class {target}.")
    if a <= limit:
        return Finding("good", "Backdoor removed",
                       f"The trigger now sends {pct(a)} of images to class {target} "
                       f"(before: {pct(b)}; counted as removed at or below {pct(limit)}).")
    return Finding("bad", "Backdoor NOT removed",
                   f"The trigger still sends {pct(a)} of images to class {target} "
                   f"(before: {pct(b)}; removed means at or below {pct(limit)}).")


def _purify(report: dict) -> Verdict:
    metrics = report.get("metrics") or {}
    before, after = metrics.get("before") or {}, metrics.get("after") or {}
    gate = report.get("gate") or {}
    limit = gate.get("max_asr")
    findings = [_asr_finding(report, before, after, ASR_REMOVED if limit is None else limit)]
    drop, allowed = gate.get("acc_drop"), gate.get("max_acc_drop")
    if drop is not None and allowed is not None:
        change = (f"Clean accuracy {pct(before.get('accuracy'))} → {pct(after.get('accuracy'))}"
                  f" ({-100 * drop:+.1f} points; the gate allows a drop of {100 * allowed:.1f}).")
        ok = drop <= allowed
        findings.append(Finding("good" if ok else "bad",
                                "Accuracy kept" if ok else "Accuracy dropped too much", change))
    if "passed" in gate:
        if gate["passed"]:
            findings.append(Finding("good", "Verification gate passed",
                                    "Measured with onnxruntime on the written file."))
        else:
            reasons = "; ".join(gate.get("reasons") or []) or "see the gate settings"
            reasons = reasons[:1].upper() + reasons[1:]
            findings.append(Finding("bad", "Verification gate FAILED",
                                    f"{reasons}. The output file was kept for review."))
    findings.extend(_lost_classes(report, before, after))
    weak = _weakly_flagged(report)
    if weak:
        names = ", ".join(class_label(report, k) for k in weak)
        findings.append(Finding(
            "warn", "Weak evidence for the flagged class",
            f"Only some unlearning runs flagged class {names} and no probe confirmed it; "
            "that is how a clean model's most easily confused class has been "
            "flagged. Without other evidence of a backdoor, and if the accuracy cost matters, "
            "keep the original or rerun with --max-suspicious 0 (a plain fine-tune)."))
    findings.append(_what_was_done(report))
    status = _worst(findings)
    headline = {
        "bad": "Problems found: do not ship the purified model as it is",
        "warn": "Passed, with a caveat: read below",
    }.get(status, "The purified model passed every check")
    return Verdict(headline, status, findings)


def _lost_classes(report: dict, before: dict, after: dict) -> list[Finding]:
    """A warning for each class whose held-out accuracy all but vanished."""
    names = before.get("class_names") or []
    acc0, acc1 = before.get("per_class_accuracy") or {}, after.get("per_class_accuracy") or {}
    confusion = before.get("confusion") or []
    flagged = set((report.get("defense") or {}).get("flagged") or [])
    found = []
    for k, name in enumerate(names):
        a0, a1 = acc0.get(name), acc1.get(name)
        n = sum(confusion[k]) if k < len(confusion) else 0
        if a0 is None or a1 is None or n < CLASS_LOST_MIN_IMAGES or a0 - a1 < CLASS_LOST_DROP:
            continue
        why = (" ULRL re-initialised this class's output neuron and relearning did not bring "
               "it back: the purified model rarely predicts it." if k in flagged else "")
        found.append(Finding(
            "warn", f"Class {class_label(report, k)} all but lost",
            f"{pct(a0)} → {pct(a1)} of its {n} held-out images classified correctly.{why}"))
    return found


def _found_by(defense: dict, k: int) -> list[str]:
    """Which detectors flagged class ``k``, from a purify report's ``defense`` section."""
    from ulrl_edge.scan import found_by

    return found_by({"flagged": defense.get("flagged") or [], **(defense.get("unlearn") or {})}, k)


def _weakly_flagged(report: dict) -> list[int]:
    """ULRL's flagged classes that a split unlearning vote alone put there."""
    defense = report.get("defense") or {}
    unlearn = defense.get("unlearn") or {}
    votes, runs = unlearn.get("votes"), len(unlearn.get("runs") or [])
    if not votes:
        return []
    return [k for k in defense.get("flagged") or []
            if votes[k] < runs and _found_by(defense, k) == ["unlearning"]]


def _what_was_done(report: dict) -> Finding:
    defense = report.get("defense") or {}
    data = report.get("data") or {}
    n = defense.get("num_samples", data.get("n_purify"))
    method = report.get("method") or defense.get("method")
    if method != "ulrl":
        return Finding("info", f"What was done: {method}",
                       f"The {method} defense ran" + (f" on {n} clean images." if n else "."))
    flagged = defense.get("flagged") or []
    cfg = defense.get("config") or {}
    runs, agree = cfg.get("unlearn_runs", 1), cfg.get("unlearn_agreement", 1)
    relearned = defense.get("relearn") or {}
    epochs = len(relearned.get("curve") or [])
    vote = f" in at least {agree} of {runs} unlearning runs" if runs > 1 else ""
    if flagged:
        names = ", ".join(class_label(report, k) + _flagged_by(defense, k, vote) for k in flagged)
        found = f"ULRL flagged the output neuron of class {names} and re-initialised it"
    else:
        found = (f"ULRL flagged no output neuron{vote}, so nothing was re-initialised and "
                 "relearning was a plain fine-tune")
    images = f" on {n} clean images" if n else ""
    return Finding("info", "What was done",
                   f"{found}; it then trained {epochs} epochs{images}{_how(relearned)}.")


def _flagged_by(defense: dict, k: int, vote: str) -> str:
    """What flagged class ``k``, in words: the unlearning vote, a probe, or both."""
    if not defense.get("unlearn"):  # an older or partial report: the vote is all it can say
        return vote
    by = _found_by(defense, k)
    # One unlearning run (paper) has no vote to quote.
    said = [(vote.strip() or "by unlearning") if name == "unlearning" else f"by the {name}"
            for name in by]
    return ", found " + " and ".join(said) + "," if said else vote


def _how(relearned: dict) -> str:
    """How relearning met the flagged class, in words (empty for plain relearning)."""
    attacks = {
        "patch": "pasted patches",
        "linf": "small perturbations",
        "linf+warp": "small perturbations and smooth warps",
    }
    parts = []
    if relearned.get("adversary") in attacks:
        bank = f" (a bank of {relearned['bank']} crafted once)" if relearned.get("bank") else ""
        parts.append(f"against {attacks[relearned['adversary']]}{bank} aimed at that class")
    if relearned.get("distill"):
        parts.append("keeping close to the original model's answers among the other classes")
    if relearned.get("anchor"):
        parts.append("holding the weights the clean images rely on near their original values")
    refit = relearned.get("refit") or {}
    if refit.get("rows"):
        parts.append(f"then refitted that neuron alone for {refit.get('epochs')} epochs, the "
                     "rest of the network frozen, against the same attack")
    return ", " + ", ".join(parts) if parts else ""


def _scan(report: dict) -> Verdict:
    suspicious = (report.get("metrics") or {}).get("suspicious") or []
    threshold = ((report.get("defense") or {}).get("mad") or {}).get("threshold", 3.5)
    if not suspicious:
        finding = Finding("info", "No output neuron was a consistent outlier",
                          "No class stood out while the model was made to forget. A scan is a "
                          "screening test and can miss a backdoor; if you know the trigger, "
                          "measure it with ulrl-edge verify --trigger.")
        return Verdict("No suspicious class found", "info", [finding])
    defense = report.get("defense") or {}
    findings = [
        Finding("warn", f"Class {class_label(report, s.get('class'))} looks like a backdoor "
                "target", _evidence(s, threshold, defense) + " Run ulrl-edge purify to remove it.")
        for s in suspicious
    ]
    return Verdict("Suspicious: this model may carry a backdoor", "warn", findings)


# What each probe's flag means, in words (``{lead}``: its largest gap).
_PROBE_EVIDENCE = {
    "target probe": ("probe", "One small perturbation shared by all images reaches it far more "
                              "easily than any other class (lead {lead})."),
    "warp probe": ("warp_probe", "One slight smooth warp applied to every image sends them there "
                                 "far more easily than to any other class (lead {lead})."),
    "patch probe": ("patch_probe", "One small patch pasted on every image sends them there far "
                                   "more easily than to any other class (lead {lead})."),
}  # fmt: skip


def _evidence(s: dict, threshold: float, defense: dict) -> str:
    """What flagged one suspicious class, in words (reports before ``found_by``: unlearning)."""
    found_by = s.get("found_by") or ["unlearning"]
    parts = []
    if "unlearning" in found_by:
        z = "∞" if s.get("z") is None else f"{s['z']:.1f}"
        agree, runs = s.get("runs_agreeing"), s.get("runs")
        runs_text = f"; {agree} of {runs} unlearning runs agree" if agree is not None else ""
        parts.append(f"Its output neuron moved far more than the others while the model was "
                     f"made to forget (robust z = {z}, threshold {threshold}{runs_text}).")
        confirmed = any(name in found_by for name in _PROBE_EVIDENCE)
        if agree is not None and agree < runs and not confirmed:
            parts.append("The runs were split and no probe confirmed it: "
                         "weaker evidence (it has flagged a clean model's most easily confused "
                         "class); if you know the trigger, check with ulrl-edge verify "
                         "--trigger.")
    for name, (key, words) in _PROBE_EVIDENCE.items():
        if name in found_by:
            gap = max((defense.get(key) or {}).get("gap") or [0.0])
            parts.append(words.format(lead=pct(gap)))
    return " ".join(parts)


def _verify(report: dict) -> Verdict:
    measured = (report.get("metrics") or {}).get("measured") or {}
    ci = (measured.get("ci95") or {}).get("accuracy") or [None, None]
    findings = [Finding("info", f"Clean accuracy {pct(measured.get('accuracy'))}",
                        f"95% interval {pct(ci[0])} to {pct(ci[1])}, on "
                        f"{measured.get('n', 0)} images.")]
    asr = measured.get("attack_success_rate")
    if asr is not None:
        target = class_label(report, measured.get("target"))
        works = asr > ASR_REMOVED
        findings.append(Finding(
            "bad" if works else "good",
            "The trigger works: backdoor present" if works else "The trigger has no effect",
            f"{pct(asr)} of {measured.get('n_triggered', 0)} triggered images go to class "
            f"{target} (no effect means at or below {pct(ASR_REMOVED)})."))
        headline = ("This model responds to the trigger" if works
                    else "The trigger does not control this model")
    else:
        headline = f"Clean accuracy {pct(measured.get('accuracy'))}"
    return Verdict(headline, _worst(findings), findings)
