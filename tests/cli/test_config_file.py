"""``--config FILE.toml`` (flags win) and ``--print-config``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.fixtures.backdoor import cached_case

BADNETS = "badnets:size=3,pos=br"

PINNED = """
preset = "paper"
seed = 3
max-acc-drop = 0.01
trigger = "badnets:size=3"
target = 0
layout = "nchw"
mean = [0.5]
flip = true

[set]
relearn_epochs = 10
unlearn_milestones = [5, 8]
penalty = "cos2"

[purify]
max_suspicious = 2

[scan]
seed = 9
"""


@pytest.fixture(scope="module")
def case():
    return cached_case(BADNETS)


@pytest.fixture(scope="module")
def clean_npz(tmp_path_factory, case):
    images = case.data["clean_train"]
    index = np.sort(np.random.default_rng(0).choice(len(images), 200, replace=False))
    path = tmp_path_factory.mktemp("data") / "clean.npz"
    np.savez(path, x=np.round(images.x[index] * 255).astype(np.uint8), y=images.y[index])
    return path


def _write(tmp_path, text, name="pinned.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _printed(run_cli, args):
    return json.loads(run_cli([*args, "--print-config", "--json"]).stdout)


def test_file_sets_flags_and_settings(run_cli, tmp_path, case):
    config = _write(tmp_path, PINNED)
    got = _printed(run_cli, ["purify", case.onnx_path, "-c", "absent/", "-o", tmp_path / "p.onnx",
                             "--config", config])
    flags, defense = got["flags"], got["defense"]
    assert (flags["preset"], flags["seed"], flags["max-acc-drop"]) == ("paper", 3, 0.01)
    assert flags["trigger"] == "badnets:size=3" and flags["flip"] is True
    assert flags["max-suspicious"] == 2  # from [purify]
    assert (defense["preset"], defense["seed"], defense["relearn_epochs"]) == ("paper", 3, 10)
    assert defense["unlearn_milestones"] == [5, 8] and defense["penalty"] == "cos2"
    assert defense["max_suspicious"] == 2
    assert got["preprocess"]["mean"] == [0.5] and got["config_file"] == str(config)
    assert got["clean_exists"] is False  # the clean samples are not needed to print


def test_flags_on_the_command_line_win(run_cli, tmp_path, case):
    config = _write(tmp_path, PINNED)
    got = _printed(run_cli, [
        "purify", case.onnx_path, "-c", "absent/", "-o", tmp_path / "p.onnx", "--config", config,
        "--seed", "5", "--no-flip", "--mean", "0.25", "--set", "relearn_epochs=4",
        "--max-suspicious", "1", "--preset", "auto",
    ])
    flags, defense = got["flags"], got["defense"]
    assert (flags["seed"], flags["flip"], flags["mean"], flags["preset"]) == (5, False, [0.25],
                                                                               "auto")
    assert defense["relearn_epochs"] == 4 and defense["penalty"] == "cos2"  # file's other keys
    assert defense["max_suspicious"] == 1 and defense["preset"] == "auto"


def test_command_tables_apply_to_their_command_only(run_cli, tmp_path, case):
    config = _write(tmp_path, PINNED.replace("max-acc-drop = 0.01\ntrigger", "trigger")
                    .replace('trigger = "badnets:size=3"\ntarget = 0\n', ""))
    got = _printed(run_cli, ["scan", case.onnx_path, "-c", "absent/", "--config", config])
    assert got["flags"]["seed"] == 9 and got["flags"]["max-suspicious"] is None
    assert got["defense"]["relearn_epochs"] == 10


def test_printed_text_reads_back_as_the_same_config(run_cli, tmp_path, case):
    args = ["purify", case.onnx_path, "-c", "absent/", "-o", tmp_path / "p.onnx",
            "--set", "relearn_epochs=7", "--size", "16", "16", "--std", "0.5",
            "--trigger", BADNETS, "--target", "0", "--preset", "paper"]
    text = run_cli([*args, "--print-config"]).stdout
    assert text.startswith("# ulrl-edge purify") and "\n[set]\n" in text
    pinned = _write(tmp_path, text, "printed.toml")
    again = _printed(run_cli, ["purify", case.onnx_path, "--config", pinned])
    direct = _printed(run_cli, args)
    assert again["flags"] == direct["flags"] and again["defense"] == direct["defense"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sed = 3\n", ["unknown key 'sed'", "did you mean 'seed'"]),
        ('seed = "three"\n', ["key 'seed'"]),
        ("max-acc-drop = 2.0\n", ["key 'max-acc-drop'"]),
        ('flip = "yes"\n', ["key 'flip'", "true or false"]),
        ("mean = [1, 2]\n", ["key 'mean'", "1 or 3 numbers"]),
        ('preset = "papr"\n', ["key 'preset'", "auto"]),
        ("size = [16]\n", ["key 'size'", "2 values"]),
        ("[set]\nrelearn_epocs = 3\n", ["[set]", "did you mean 'relearn_epochs'"]),
        ('[set]\nrelearn_epochs = "ten"\n', ["[set] relearn_epochs=ten"]),
        ("set = 3\n", ["'set' must be a table"]),
        ("seed = \n", ["not a valid TOML file"]),
        ("json = true\n", ["unknown key 'json'"]),
    ],
)
def test_bad_files_exit_3_naming_key_and_file(run_cli, tmp_path, case, text, expected):
    config = _write(tmp_path, text, "bad.toml")
    result = run_cli(["purify", case.onnx_path, "-c", "absent/", "-o", tmp_path / "p.onnx",
                      "--config", config, "--print-config"], expect_exit=3)
    assert result.stdout == ""
    error = result.stderr.splitlines()[0]
    assert error.startswith(f"error: {config}: ")
    for part in expected:
        assert part in error


def test_missing_file_and_set_for_a_command_without_settings(run_cli, tmp_path, case):
    missing = run_cli(["verify", case.onnx_path, "-d", "x.npz", "--config", tmp_path / "no.toml"],
                      expect_exit=3)
    assert "no.toml: config file not found" in missing.stderr
    config = _write(tmp_path, "[set]\nrelearn_epochs = 3\n")
    result = run_cli(["verify", case.onnx_path, "-d", "x.npz", "--config", config], expect_exit=3)
    assert "has no defense settings" in result.stderr


def test_verify_reads_its_flags_from_the_file(run_cli, tmp_path, case, clean_npz):
    config = _write(tmp_path, f'data = "{clean_npz}"\ntrigger = "{BADNETS}"\ntarget = 0\n'
                              "batch-size = 16\n")
    got = json.loads(run_cli(["verify", case.onnx_path, "--config", config, "--json"]).stdout)
    assert got["data"] == str(clean_npz) and got["attack_success_rate"] > 0.8


def test_scan_runs_with_the_file_settings(run_cli, tmp_path, case, clean_npz):
    # The probes are switched off by the file too (a boolean and an empty list; CI minutes).
    config = _write(tmp_path, "seed = 2\n[set]\nunlearn_epochs = 1\nunlearn_runs = 1\n"
                              "unlearn_agreement = 1\npatch_probe = false\nprobe_eps = []\n")
    run_cli(["scan", case.onnx_path, "--clean", clean_npz, "--config", config, "--report",
             tmp_path / "rep", "--json"])
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["seed"] == 2
    assert report["config"]["unlearn_epochs"] == 1 and report["config"]["unlearn_runs"] == 1
    assert report["config"]["patch_probe"] is False and report["config"]["probe_eps"] == []
