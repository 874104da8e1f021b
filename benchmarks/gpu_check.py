"""One prepared check for a session that has an NVIDIA GPU: TensorRT engines of the sample model.

Times purification of the sample on CUDA with and without AMP (``--amp``/``--no-amp``).
Builds fp32 and fp16 engines of ``sample_models/backdoored.onnx`` and of a purified copy,
checks each against onnxruntime CPU on the 1000 test images (parity gate of its precision,
top-1 agreement, ACC), times them at batch 1 and 32 (median of N runs), compares the two GPU
memory paths of the engine runner (PyTorch, libcudart), checks that a broken engine is
refused with the rebuild message, runs the Jetson bundle's build_engine.sh with the real
trtexec when there is one, and runs the ``gpu``/``trt`` pytest markers. Prints ONE JSON
object on stdout; progress goes to stderr. Every step records its own error, so one failure
does not hide the others. Without a GPU or TensorRT the steps say why they were skipped.

    pip install -e . --no-deps --no-build-isolation   # once, if ulrl-edge is not installed
    python benchmarks/gpu_check.py                  # purifies the sample first (~1 min)
    python benchmarks/gpu_check.py --purified P.onnx --runs 50
    python benchmarks/gpu_check.py --skip-purify    # a round-tripped copy stands in
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_models" / "backdoored.onnx"
TEST = ROOT / "sample_models" / "test.npz"
CLEAN = ROOT / "sample_models" / "clean"


def cli(*args: str) -> list[str]:
    """The ulrl-edge command line (the console script, or the app through this Python)."""
    exe = shutil.which("ulrl-edge")
    if exe:
        return [exe, *args]
    return [sys.executable, "-c", "from ulrl_edge.cli.main import app; app()", *args]


def log(message: str) -> None:
    print(f"[gpu_check] {message}", file=sys.stderr, flush=True)


def step(summary: dict, name: str, fn, *args, **kwargs):
    """Run one step; record its result, its time, or its error (never raise)."""
    start = time.perf_counter()
    log(f"{name} …")
    try:
        value = fn(*args, **kwargs)
        summary[name] = {"ok": True, "seconds": round(time.perf_counter() - start, 2), **value}
    except Exception as err:  # noqa: BLE001 - the summary must come out whatever fails
        summary[name] = {
            "ok": False,
            "seconds": round(time.perf_counter() - start, 2),
            "error": f"{type(err).__name__}: {' '.join(str(err).split())[:400]}",
            "where": traceback.format_exc().strip().splitlines()[-3:],
        }
    log(f"{name}: {'ok' if summary[name]['ok'] else summary[name]['error']}")
    return summary[name]


def environment() -> dict:
    import onnxruntime as ort
    import torch

    info = {
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
        "torch": torch.__version__,
        "torch_cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "trtexec": shutil.which("trtexec")
        or (
            "/usr/src/tensorrt/bin/trtexec"
            if os.path.exists("/usr/src/tensorrt/bin/trtexec")
            else None
        ),
    }
    try:
        import tensorrt

        info["tensorrt"] = tensorrt.__version__
    except ImportError as err:
        info["tensorrt"] = None
        info["tensorrt_error"] = str(err)
    smi = shutil.which("nvidia-smi")
    if smi:
        out = subprocess.run(
            [smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        info["nvidia_smi"] = out.stdout.strip()
    return info


def purified_model(args, work: Path) -> dict:
    """The purified model: given, purified now with ulrl-edge, or a round-tripped stand-in."""
    if args.purified:
        return {"path": str(args.purified), "how": "given"}
    out = work / "purified.onnx"
    if not args.skip_purify:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        cmd = cli(
            "purify",
            str(SAMPLE),
            "--clean",
            str(CLEAN),
            "-o",
            str(out),
            "--device",
            device,
            "--json",
        )
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.purify_timeout)
        if out.exists():  # exit 1 (a gate) still leaves a usable purified file
            return {
                "path": str(out),
                "how": f"ulrl-edge purify --device {device}",
                "exit_code": done.returncode,
            }
        log(f"purify failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    cmd = cli("roundtrip", str(SAMPLE), "-o", str(out))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"roundtrip failed: {done.stderr.strip()[-300:]}")
    return {"path": str(out), "how": "roundtrip (stand-in: not purified)"}


def amp_check(args, work: Path) -> dict:
    """Purify the sample on CUDA with and without AMP: defend seconds, ACC, flagged rows."""
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "torch sees no CUDA device"}
    found = {}
    for flag in ("--amp", "--no-amp"):
        out, rep = work / f"purified{flag}.onnx", work / f"report{flag}"
        cmd = cli("purify", str(SAMPLE), "--clean", str(CLEAN), "-o", str(out), "--device",
                  "cuda", flag, "--report", str(rep), "--json", "--force")
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.purify_timeout)
        if done.returncode != 0:
            raise RuntimeError(f"purify {flag} exited {done.returncode}: {done.stderr[-300:]}")
        report = json.loads((rep / "report.json").read_text())
        found[flag.lstrip("-")] = {
            "compute": report["compute"],
            "defend_s": report["timings"]["defend"],
            "acc_before": report["metrics"]["before"]["accuracy"],
            "acc_after": report["metrics"]["after"]["accuracy"],
            "flagged": report["defense"].get("flagged"),
        }
    found["speedup"] = round(found["no-amp"]["defend_s"] / found["amp"]["defend_s"], 2)
    return found


def timing(fn, x: np.ndarray, runs: int) -> dict:
    for _ in range(5):
        fn(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"median_ms": round(median * 1e3, 4), "img_s": round(len(x) / median, 1)}


def engine_check(model: Path, precision: str, work: Path, x_test: np.ndarray, args) -> dict:
    """Build one engine; parity, ACC and latency against onnxruntime CPU."""
    from ulrl_edge.data.sources import load_images
    from ulrl_edge.data.spec import resolve_spec
    from ulrl_edge.export import build_engine
    from ulrl_edge.export.validate import runtime_parity, tolerance_for
    from ulrl_edge.onnx_io.load import load_model
    from ulrl_edge.verify import OrtRunner, evaluate
    from ulrl_edge.verify.engine_runner import EngineRunner

    engine = work / f"{model.stem}-{precision}.engine"
    start = time.perf_counter()
    build = build_engine(model, engine, fp16=precision == "fp16", shapes="1,1,32")
    built_s = time.perf_counter() - start
    runner = EngineRunner(engine)
    report = runtime_parity(model, runner, x_test, tolerance=tolerance_for(build.precision))
    source = load_model(model)
    spec = resolve_spec(source.inputs[0].shape, source.metadata)
    images = load_images(TEST, spec)
    acc_engine = evaluate(runner, images, spec).accuracy
    acc_ort = evaluate(OrtRunner(model), images, spec).accuracy
    result = {
        "precision": build.precision,
        "build_s": round(built_s, 2),
        "engine_bytes": engine.stat().st_size,
        "sidecar": {k: build.metadata.get(k) for k in ("tensorrt_version", "gpu", "profile")},
        "notes": build.notes,
        "parity_passed": report.passed,
        "max_abs_diff": report.max_abs_diff,
        "top1_agreement": report.top1_agreement,
        "gate": {"atol": report.tolerance.atol, "min_top1": report.tolerance.min_top1_agreement},
        "acc_engine": acc_engine,
        "acc_ort_cpu": acc_ort,
        "latency": {},
    }
    ort_cpu = OrtRunner(model)
    for batch in (1, 32):
        xb = np.ascontiguousarray(x_test[:batch])
        result["latency"][f"engine_b{batch}"] = timing(runner._run_batch, xb, args.runs)
        result["latency"][f"ort_cpu_b{batch}"] = timing(
            lambda v: ort_cpu.session.run(None, {ort_cpu.input_name: v}), xb, args.runs
        )
    if precision == "fp32":  # the two GPU memory paths of the runner must agree
        outputs = {}
        for kind in ("torch", "cudart"):
            try:
                outputs[kind] = EngineRunner(engine, memory=kind).run(x_test[:64])
            except Exception as err:  # noqa: BLE001
                result[f"memory_{kind}_error"] = str(err)[:300]
        if len(outputs) == 2:
            result["memory_paths_max_diff"] = float(
                np.abs(outputs["torch"] - outputs["cudart"]).max()
            )
    return result


def ort_gpu_check(x_test: np.ndarray, runs: int) -> dict:
    import onnxruntime as ort

    from ulrl_edge.config import ParityTolerance
    from ulrl_edge.export.validate import runtime_parity
    from ulrl_edge.verify import OrtRunner

    gate = ParityTolerance(atol=1e-2, rtol=1e-2, min_top1_agreement=0.995)
    result = {}
    for runtime, provider in (("ort-cuda", "CUDA"), ("ort-trt", "Tensorrt")):
        if f"{provider}ExecutionProvider" not in ort.get_available_providers():
            result[runtime] = "skipped: provider not in this onnxruntime"
            continue
        report = runtime_parity(SAMPLE, SAMPLE, x_test, runtime=runtime, tolerance=gate)
        runner = OrtRunner(SAMPLE, runtime)
        result[runtime] = {
            "parity_passed": report.passed,
            "max_abs_diff": report.max_abs_diff,
            "top1_agreement": report.top1_agreement,
            "b32": timing(
                lambda v, r=runner: r.session.run(None, {r.input_name: v}),
                np.ascontiguousarray(x_test[:32]),
                runs,
            ),
        }
    return result


def broken_engine_check(work: Path) -> dict:
    from ulrl_edge.errors import BadInput
    from ulrl_edge.verify.engine_runner import EngineRunner

    good = next(work.glob("*-fp32.engine"))
    bad = work / "broken.engine"
    bad.write_bytes(good.read_bytes()[:256])
    try:
        EngineRunner(bad)
    except BadInput as err:
        return {"refused": True, "message": str(err)[:300], "names_rebuild": "rebuild" in str(err)}
    return {"refused": False}


def bundle_check(work: Path, trtexec: str | None, x_test: np.ndarray) -> dict:
    if not trtexec:
        return {"skipped": "no trtexec on this machine"}
    from ulrl_edge.export.validate import runtime_parity, tolerance_for
    from ulrl_edge.verify.engine_runner import EngineRunner

    folder = work / "bundle"
    cmd = cli("export", str(SAMPLE), "-f", "tensorrt", "--fp16", "--bundle", str(folder))
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    env = {**os.environ, "TRTEXEC": trtexec}
    done = subprocess.run(
        ["bash", str(folder / "build_engine.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        return {"script_exit": done.returncode, "stderr": done.stderr[-600:]}
    engine = folder / "model.engine"
    report = runtime_parity(SAMPLE, EngineRunner(engine), x_test, tolerance=tolerance_for("fp16"))
    sidecar = json.loads((folder / "model.engine.json").read_text())
    return {
        "script_exit": 0,
        "parity_passed": report.passed,
        "max_abs_diff": report.max_abs_diff,
        "top1_agreement": report.top1_agreement,
        "sidecar_tensorrt": sidecar.get("tensorrt_version"),
        "sidecar_gpu": sidecar.get("gpu"),
    }


def pytest_markers() -> dict:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "gpu or trt",
        "tests/export/test_runtimes.py",
        "tests/verify/test_runners.py",
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    return {"exit_code": done.returncode, "tail": done.stdout.strip().splitlines()[-1:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purified", type=Path, help="a purified model (skips purifying)")
    parser.add_argument("--skip-purify", action="store_true", help="round-trip instead")
    parser.add_argument("--purify-timeout", type=int, default=300)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per latency cell")
    parser.add_argument("--keep", type=Path, help="keep engines and files in this folder")
    args = parser.parse_args(argv)

    summary: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S")}
    env = step(summary, "environment", environment)
    work = Path(args.keep or tempfile.mkdtemp(prefix="ulrl-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    from ulrl_edge.data.preprocess import PreprocessSpec
    from ulrl_edge.export.validate import parity_inputs

    spec = PreprocessSpec(layout="nchw", size=(28, 28), channels="gray")
    x_test, _, _ = parity_inputs(spec, TEST)
    purified = step(summary, "purified_model", purified_model, args, work)
    if not env.get("tensorrt") or not env.get("ok"):
        summary["engines"] = {"skipped": "TensorRT is not importable here"}
    else:
        models = {"sample": SAMPLE}
        if purified.get("ok"):
            models["purified"] = Path(purified["path"])
        for name, path in models.items():
            for precision in ("fp32", "fp16"):
                step(
                    summary,
                    f"engine_{name}_{precision}",
                    engine_check,
                    path,
                    precision,
                    work,
                    x_test,
                    args,
                )
        step(summary, "broken_engine", broken_engine_check, work)
    step(summary, "purify_amp", amp_check, args, work)
    step(summary, "ort_gpu_providers", ort_gpu_check, x_test, args.runs)
    step(summary, "bundle_trtexec", bundle_check, work, env.get("trtexec"), x_test)
    step(summary, "pytest_gpu_trt", pytest_markers)
    checks = [v for k, v in summary.items() if isinstance(v, dict) and "ok" in v]
    summary["engines_checked"] = sum(k.startswith("engine_") for k in summary)
    summary["all_ok"] = (
        summary["engines_checked"] > 0
        and all(v["ok"] for v in checks)
        and all(v.get("parity_passed", True) for v in checks)
    )
    print(json.dumps(summary, indent=2, default=str))
    return 0 if summary["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
