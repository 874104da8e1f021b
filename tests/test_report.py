"""report.json (schema, stability) and report.html (sections, embedded PNGs, no matplotlib).

One real purify and one real scan on the tiny backdoored digits model give the reports the
tests read, so that the schema is checked against what the pipeline really writes.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.fixtures.backdoor import cached_case
from ulrl_edge.report import RunReport, reproduce_command, to_json, verify_report, write_report
from ulrl_edge.report_html import render_html, write_html
from ulrl_edge.report_verdict import verdict

# Scanning and purifying the same model repeats the probes' questions; the first answer
# stands (tests/fixtures/remembered_probes.py).
pytestmark = pytest.mark.usefixtures("remembered_probes")

DOCS = Path(__file__).resolve().parents[1] / "docs"
TRIGGER = "badnets:size=3,pos=br"
QUICK = {"unlearn_epochs": 2, "relearn_epochs": 3, "patch_probe": False}  # detection: elsewhere
SECTIONS = {
    "purify": ["verdict", "metrics", "per-class", "neurons", "unlearning", "relearning",
               "resources", "provenance"],
    "scan": ["verdict", "neurons", "unlearning", "resources", "provenance"],
    "verify": ["verdict", "metrics", "per-class", "resources", "provenance"],
    "ft": ["verdict", "metrics", "per-class", "relearning", "resources", "provenance"],
}
PNG = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Report folders of a real purify, scan and verify on the tiny backdoored model."""
    from ulrl_edge.data import parse_trigger
    from ulrl_edge.pipeline import DataOptions, TriggerOptions, purify
    from ulrl_edge.scan import scan
    from ulrl_edge.verify import evaluate

    tmp = tmp_path_factory.mktemp("reports")
    case = cached_case(TRIGGER)
    images = case.data["clean_train"]
    np.savez(tmp / "clean.npz", x=np.round(images.x[:300] * 255).astype(np.uint8),
             y=images.y[:300])
    data = DataOptions(tmp / "clean.npz")
    argv = ["ulrl-edge", "purify", str(case.onnx_path), "--clean", "my clean.npz"]
    purify(case.onnx_path, data, tmp / "out.onnx", config_overrides=QUICK,
           trigger=TriggerOptions(TRIGGER, 0), report_dir=tmp / "purify", argv=argv)
    purify(case.onnx_path, data, tmp / "ft.onnx", method="ft", config_overrides={"epochs": 2},
           report_dir=tmp / "ft", argv=["ulrl-edge", "purify", "--method", "ft"])
    scan(case.onnx_path, data, config_overrides=QUICK, report_dir=tmp / "scan",
         argv=["ulrl-edge", "scan", str(case.onnx_path)])
    spec = case.data["spec"]
    metrics = evaluate(case.onnx_path, case.data["test"], spec,
                       trigger=parse_trigger(TRIGGER), target=0)
    report = verify_report(case.onnx_path, "test.npz", metrics.to_dict(), seconds=0.5,
                           preprocess=json.loads(spec.to_json()), argv=["ulrl-edge", "verify"])
    write_report(report, tmp / "verify")
    return {name: tmp / name for name in [*SECTIONS, "ft"]}


def _load(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


def _validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((DOCS / "report-schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("command", list(SECTIONS))
def test_real_reports_match_the_schema(runs, command):
    report = _load(runs[command])
    assert report["command"] == command.replace("ft", "purify")
    assert report["schema_version"] == 1
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(report)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda r: r.pop("metrics"),
        lambda r: r["source"].update(sha256="not-a-hash"),
        lambda r: r["metrics"]["after"].update(accuracy=1.5),
        lambda r: r["gate"].update(passed="yes"),
        lambda r: r.update(output={}),
        lambda r: r["defense"]["unlearn"].update(runs=[]),
        lambda r: r.update(schema_version=2),
    ],
)
def test_schema_rejects_broken_reports(runs, breakage):
    report = _load(runs["purify"])
    breakage(report)
    assert list(_validator().iter_errors(report))


def test_every_field_is_documented(runs):
    doc = (DOCS / "report-schema.md").read_text(encoding="utf-8")
    schema = json.loads((DOCS / "report-schema.json").read_text(encoding="utf-8"))
    purify = _load(runs["purify"])
    scan = _load(runs["scan"])
    defense = purify["defense"]
    first_run = defense["unlearn"]["runs"][0]
    keys = {
        "top level": set(purify) | set(scan),
        "metrics": set(purify["metrics"]["after"]),
        "gate": set(purify["gate"]),
        "data": set(purify["data"]),
        "parity": set(purify["parity"]["export"]),
        "defense": set(defense),
        "unlearn": set(defense["unlearn"]) | set(first_run),
        "mad": set(defense["unlearn"]["mad"]),
        "epoch": set(defense["relearn"]["curve"][0]) | set(first_run["curve"][0]),
    }
    missing = {part: sorted(k for k in names if f"`{k}`" not in doc)
               for part, names in keys.items()}
    assert not any(missing.values()), f"undocumented in report-schema.md: {missing}"
    assert set(purify) <= set(schema["properties"])


@pytest.mark.parametrize("command", list(SECTIONS))
def test_html_has_every_section_and_real_pngs(runs, command):
    page = (runs[command] / "report.html").read_text(encoding="utf-8")
    for section in SECTIONS[command]:
        assert f"id='{section}'" in page, f"{command}: no section {section}"
    assert page.index("id='verdict'") < page.index("id='provenance'")
    images = PNG.findall(page)
    assert len(images) >= {"purify": 6, "scan": 2, "verify": 2, "ft": 4}[command]
    for data in images:
        image = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        image.verify()
        assert image.format == "PNG" and min(image.size) > 50
    report = _load(runs[command])
    assert report["source"]["sha256"] in page
    assert "versions" in page and report["versions"]["onnxruntime"] in page


@pytest.mark.parametrize("command", list(SECTIONS))
def test_html_opens_offline(runs, command):
    page = (runs[command] / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*['"](?!data:|#)""", page), "external resource"
    assert "<script" not in page and "@import" not in page


def test_purify_page_shows_numbers_and_the_command(runs):
    report = _load(runs["purify"])
    page = (runs["purify"] / "report.html").read_text(encoding="utf-8")
    after = report["metrics"]["after"]
    assert f"{100 * after['accuracy']:.1f}%" in page
    assert f"{100 * after['attack_success_rate']:.1f}%" in page
    low, high = after["ci95"]["accuracy"]
    assert f"{100 * low:.1f}% – {100 * high:.1f}%" in page
    assert report["output"]["sha256"] in page
    assert "&#x27;my clean.npz&#x27;" in page  # the reproduce command, quoted for the shell
    assert report["compute"] == {"device": "cpu", "amp": None}
    assert "Trained on <code>cpu</code> in float32." in page
    for name in report["data"]["classes"]:
        assert name in page


def test_page_without_matplotlib_keeps_tables(runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    page = render_html(_load(runs["purify"]))
    assert not PNG.search(page)
    assert "pip install &#x27;ulrl-edge[report]&#x27;" in page
    for section in SECTIONS["purify"]:
        assert f"id='{section}'" in page
    assert page.count("<table") >= 6


def test_write_report_writes_json_and_html_atomically(tmp_path):
    report = RunReport("verify", argv=["ulrl-edge", "verify", "m.onnx"])
    report.timings = {"verify": float("nan")}
    path = write_report(report, tmp_path / "new")
    assert path == tmp_path / "new" / "report.json"
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert data["timings"]["verify"] is None and data["cwd"] and data["created"].endswith("Z")
    assert (tmp_path / "new" / "report.html").stat().st_size > 1000
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html", "report.json"]
    assert write_html(report, tmp_path / "other").read_text().startswith("<!DOCTYPE html>")


def test_hostile_names_are_escaped(runs):
    report = _load(runs["purify"])
    report["data"]["classes"][0] = "<img src=x onerror=alert(1)>"
    report["argv"].append("</pre><script>alert(1)</script>")
    page = render_html(report)
    assert "<img src=x" not in page and "<script>" not in page


def test_reproduce_command_round_trips():
    argv = ["ulrl-edge", "purify", "a b.onnx", "--clean", "c's", "-o", "out.onnx", "--force"]
    report = {"argv": argv, "cwd": "/work dir"}
    one = reproduce_command(report)
    assert one.startswith("cd '/work dir' && ") and shlex.split(one)[3:] == argv
    many = reproduce_command(report, multiline=True)
    assert shlex.split(many.replace("\\\n", " "))[3:] == argv
    assert many.count("\n") == 3  # one line per option
    assert reproduce_command({"argv": []}) == ""


def _purify_report(asr_before=1.0, asr_after=0.02, drop=0.01, max_drop=0.02, flagged=(0,)):
    def metric(acc, asr):
        return {"accuracy": acc, "attack_success_rate": asr, "target": 0, "n": 100,
                "n_triggered": 90 if asr is not None else 0}

    return {
        "command": "purify", "method": "ulrl", "data": {"classes": ["cat", "dog"]},
        "metrics": {"before": metric(0.9, asr_before), "after": metric(0.9 - drop, asr_after)},
        "gate": {"acc_drop": drop, "max_acc_drop": max_drop, "max_asr": None,
                 "passed": drop <= max_drop, "reasons": [] if drop <= max_drop else ["too low"]},
        "defense": {"flagged": list(flagged), "config": {"unlearn_runs": 1}},
    }


@pytest.mark.parametrize(
    ("kwargs", "status", "first"),
    [
        ({}, "good", "Backdoor removed"),
        ({"asr_after": 0.6}, "bad", "Backdoor NOT removed"),
        ({"drop": 0.05}, "bad", "Backdoor removed"),
        ({"asr_before": None, "asr_after": None}, "good", "Backdoor: not measured"),
        ({"asr_before": 0.03, "asr_after": 0.02}, "warn", "The given trigger does not work"),
    ],
)
def test_purify_verdict(kwargs, status, first):
    view = verdict(_purify_report(**kwargs))
    assert view.status == status
    assert view.findings[0].title.startswith(first)
    if kwargs.get("drop"):
        assert any(f.title == "Accuracy dropped too much" for f in view.findings)
    assert "0 (cat)" in view.findings[-1].detail  # what was done names the flagged class


def test_purify_verdict_says_how_relearning_met_the_flagged_class():
    report = _purify_report()
    plain = verdict(report).findings[-1].detail
    assert "aimed at" not in plain and "original model's answers" not in plain
    report["defense"]["relearn"] = {"curve": [{}] * 5, "adversary": "patch", "distill": 5.0}
    detail = verdict(report).findings[-1].detail
    assert "trained 5 epochs" in detail and "against pasted patches aimed at that class" in detail
    assert "original model's answers among the other classes" in detail
    assert "refitted" not in detail
    report["defense"]["relearn"].update(adversary="linf", bank=4)
    assert ("against small perturbations (a bank of 4 crafted once) aimed at that class"
            in verdict(report).findings[-1].detail)
    report["defense"]["relearn"].update(adversary="linf+warp", bank=0, anchor={"weight": 5.0})
    detail = verdict(report).findings[-1].detail
    assert "against small perturbations and smooth warps aimed at that class" in detail
    assert "holding the weights the clean images rely on near their original values" in detail
    report["defense"]["relearn"]["anchor"] = None
    refit = {"rows": [], "epochs": 0, "lr": 0.01, "curve": [], "judged_on": "holdout"}
    report["defense"]["relearn"]["refit"] = refit  # checked, not lost: nothing to say
    assert "refitted" not in verdict(report).findings[-1].detail
    report["defense"]["relearn"]["refit"] = {**refit, "rows": [0], "epochs": 20}
    detail = verdict(report).findings[-1].detail
    assert "then refitted that neuron alone for 20 epochs" in detail


@pytest.mark.parametrize(("unlearning", "patch", "runs", "said"), [
    ([0], None, 3, "class 0 (cat), found in at least 2 of 3 unlearning runs, and re-init"),
    ([], 0, 3, "class 0 (cat), found by the patch probe, and re-init"),
    ([0], 0, 3, "class 0 (cat), found in at least 2 of 3 unlearning runs and by the patch probe,"),
    ([0], None, 1, "class 0 (cat), found by unlearning, and re-init"),
    ([], "warp", 3, "class 0 (cat), found by the warp probe, and re-init"),
])
def test_what_was_done_names_what_flagged_the_class(unlearning, patch, runs, said):
    report = _purify_report()
    report["defense"]["config"] = {"unlearn_runs": runs, "unlearn_agreement": min(runs, 2)}
    report["defense"]["unlearn"] = {
        "unlearning_flagged": unlearning, "votes": [1, 0], "probe": {"flagged": None},
        "patch_probe": {"flagged": None if patch == "warp" else patch},
        "warp_probe": {"flagged": 0 if patch == "warp" else None}}
    assert said in verdict(report).findings[-1].detail


@pytest.mark.parametrize(("after_cat", "n_cat", "lost"), [(0.0, 12, True), (0.5, 12, False),
                                                         (0.0, 4, False)])
def test_purify_verdict_warns_of_a_class_given_up(after_cat, n_cat, lost):
    report = _purify_report()
    names = ["cat", "dog"]
    for key, cat in (("before", 0.9), ("after", after_cat)):
        report["metrics"][key].update(class_names=names,
                                      per_class_accuracy={"cat": cat, "dog": 0.9},
                                      confusion=[[n_cat, 0], [1, 11]])
    titles = [f.title for f in verdict(report).findings]
    assert ("Class 0 (cat) all but lost" in titles) is lost
    if lost:
        detail = next(f.detail for f in verdict(report).findings if "all but lost" in f.title)
        assert "90.0% → 0.0% of its 12 held-out images" in detail
        assert "re-initialised this class's output neuron" in detail  # class 0 is flagged


def test_scan_and_verify_verdicts():
    scan = {"command": "scan", "data": {"classes": ["cat", "dog"]},
            "metrics": {"suspicious": [{"class": 1, "name": "dog", "delta": 3.0, "z": None}]}}
    view = verdict(scan)
    assert view.status == "warn" and "1 (dog)" in view.findings[0].title
    assert verdict({"command": "scan", "metrics": {"suspicious": []}}).status == "info"
    measured = {"accuracy": 0.8, "attack_success_rate": 0.97, "n": 50, "n_triggered": 45,
                "target": 0, "ci95": {"accuracy": [0.7, 0.9]}}
    assert verdict({"command": "verify", "metrics": {"measured": measured}}).status == "bad"
    measured["attack_success_rate"] = 0.04
    assert verdict({"command": "verify", "metrics": {"measured": measured}}).status == "good"


def _scan_finding(found_by, agree, probe=None, key="probe"):
    entry = {"class": 1, "name": "dog", "delta": 3.0, "z": 5.0, "found_by": found_by,
             "runs_agreeing": agree, "runs": 3}
    report = {"command": "scan", "metrics": {"suspicious": [entry]},
              "defense": {"mad": {"threshold": 3.5}, key: probe or {}}}
    return verdict(report).findings[0].detail


def test_scan_verdict_says_what_found_the_class_and_how_firmly():
    firm = _scan_finding(["unlearning"], 3)
    assert "3 of 3 unlearning runs agree" in firm and "weaker evidence" not in firm
    split = _scan_finding(["unlearning"], 2)
    assert "2 of 3 unlearning runs agree" in split and "weaker evidence" in split
    probe = {"gap": [0.1, 0.62], "flagged": 1}
    confirmed = _scan_finding(["unlearning", "target probe"], 2, probe)
    assert "weaker evidence" not in confirmed and "lead 62.0%" in confirmed
    by_probe = _scan_finding(["target probe"], 0, probe)
    assert "moved far more" not in by_probe and "perturbation" in by_probe
    warped = _scan_finding(["unlearning", "warp probe"], 2, {"gap": [0.95]}, "warp_probe")
    assert "weaker evidence" not in warped and "smooth warp" in warped and "lead 95.0%" in warped


@pytest.mark.parametrize(("votes", "probe_flag", "weak"), [(2, None, True), (3, None, False),
                                                         (2, 0, False)])
def test_purify_verdict_warns_of_a_weakly_flagged_class(votes, probe_flag, weak):
    report = {"command": "purify", "method": "ulrl", "data": {"classes": ["cat", "dog"]},
              "metrics": {"before": {"accuracy": 0.9}, "after": {"accuracy": 0.85}},
              "defense": {"flagged": [0], "unlearn": {
                  "votes": [votes, 0], "runs": [{}, {}, {}], "probe": {"flagged": probe_flag}}}}
    titles = [f.title for f in verdict(report).findings]
    assert ("Weak evidence for the flagged class" in titles) is weak


def test_to_json_is_strict_and_stable():
    text = to_json({"b": [float("inf"), np.float32(0.5)], "a": np.arange(2)})
    assert json.loads(text) == {"a": [0, 1], "b": [None, 0.5]}
    assert text.index('"a"') < text.index('"b"')
    assert "Infinity" not in text and "NaN" not in text


def test_importing_the_report_modules_does_not_import_matplotlib():
    import subprocess

    code = ("import sys, ulrl_edge.report, ulrl_edge.report_html, ulrl_edge.plots; "
            "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("command", ["purify", "scan", "verify"])
def test_an_empty_report_still_renders(command):
    page = render_html(json.loads(RunReport(command).to_json()))
    assert "id='verdict'" in page and "id='provenance'" in page
    assert "id='metrics'" not in page  # no numbers, no empty section
