"""Latency and throughput of an original model vs its purified (or re-exported) copy.

Runs both files on every runtime present here: onnxruntime CPU always; onnxruntime CUDA and
TensorRT execution providers, and TensorRT engines built from both files, when the hardware
and packages are there. For batch 1 and 32 it reports the median of N timed runs (after
warm-up; original and purified alternate, so drift on a shared machine hits both alike),
images per second, and the purified/original latency ratio.

    ulrl-edge roundtrip sample_models/backdoored.onnx -o /tmp/rt.onnx
    python benchmarks/latency.py sample_models/backdoored.onnx /tmp/rt.onnx --markdown

Prints a Markdown table (``--markdown``) or one JSON object (default) on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from the repo root


def machine() -> dict:
    """What the numbers were measured on."""
    import onnxruntime as ort

    from benchmarks.machine import cpu_name

    return {
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
    }


def runtimes(requested: str) -> list[str]:
    """The runtimes to measure: those asked for, or every one present (``auto``)."""
    if requested != "auto":
        return [r.strip() for r in requested.split(",") if r.strip()]
    import onnxruntime as ort

    present = ["ort-cpu"]
    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" in providers:
        present.append("ort-cuda")
    if "TensorrtExecutionProvider" in providers:
        present.append("ort-trt")
    try:
        import tensorrt  # noqa: F401

        present.append("tensorrt")
    except ImportError:
        pass
    return present


class OrtSession:
    """An onnxruntime session as the benchmark wants it: spinning threads off by default, so
    two sessions on a small machine do not starve each other between runs."""

    def __init__(self, path: Path, runtime: str, threads: int | None, spin: bool):
        import onnxruntime as ort

        from ulrl_edge.verify.runners import RUNTIMES, OrtRunner

        checked = OrtRunner(path, runtime)  # the provider checks and input facts
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self.session = ort.InferenceSession(str(path), options, providers=list(RUNTIMES[runtime]))
        self.input_name, self.output_name = checked.input_name, checked.output_name
        self.static_batch = checked.static_batch


def open_runner(path: Path, runtime: str, workdir: Path, args):
    """A runner for ``runtime``; for ``tensorrt`` an fp32 engine is built from the file first."""
    if runtime != "tensorrt":
        return OrtSession(path, runtime, args.threads, args.spin)
    from ulrl_edge.export import build_engine
    from ulrl_edge.verify.runners import open_runner

    engine = workdir / f"{path.stem}-{abs(hash(str(path)))}.engine"
    build_engine(path, engine, shapes="1,1,32")
    return open_runner(engine, "tensorrt")


def call(runner):
    """One synchronous inference call on a ready batch, as cheaply as the runner allows."""
    session = getattr(runner, "session", None)
    if session is not None:
        feeds_name, out = runner.input_name, [runner.output_name]
        return lambda x: session.run(out, {feeds_name: x})
    return runner._run_batch  # the engine runner: one execute per batch up to its max


def measure(original, purified, x: np.ndarray, runs: int, warmup: int) -> tuple[list, list]:
    """Timed runs (seconds), original and purified alternating."""
    fa, fb = call(original), call(purified)
    for _ in range(warmup):
        fa(x)
        fb(x)
    times_a, times_b = [], []
    for i in range(runs):
        order = ((fa, times_a), (fb, times_b)) if i % 2 == 0 else ((fb, times_b), (fa, times_a))
        for fn, sink in order:
            start = time.perf_counter()
            fn(x)
            sink.append(time.perf_counter() - start)
    return times_a, times_b


def row(runtime: str, batch: int, times_a: list, times_b: list) -> dict:
    med_a, med_b = statistics.median(times_a), statistics.median(times_b)
    return {
        "runtime": runtime,
        "batch": batch,
        "runs": len(times_a),
        "original_ms": med_a * 1e3,
        "purified_ms": med_b * 1e3,
        "ratio": med_b / med_a,
        "original_img_s": batch / med_a,
        "purified_img_s": batch / med_b,
    }


def benchmark(original: Path, purified: Path, args) -> dict:
    from ulrl_edge.data.spec import resolve_spec
    from ulrl_edge.onnx_io.load import load_model

    source = load_model(original)
    spec = resolve_spec(source.inputs[0].shape, source.metadata, model=original)
    rng = np.random.default_rng(0)
    rows, skipped = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for runtime in runtimes(args.runtimes):
            try:
                a = open_runner(original, runtime, Path(tmp), args)
                b = open_runner(purified, runtime, Path(tmp), args)
            except Exception as err:  # noqa: BLE001 - a runtime that cannot start is reported
                skipped[runtime] = " ".join(str(err).split())[:200]
                continue
            for batch in args.batches:
                if a.static_batch and a.static_batch != batch:
                    skipped[f"{runtime}@{batch}"] = (
                        f"the model's batch is fixed at {a.static_batch}"
                    )
                    continue
                h, w = spec.size
                pixels = rng.random((batch, h, w, spec.num_channels), dtype=np.float32)
                x = spec.to_model_input(pixels)
                rows.append(row(runtime, batch, *measure(a, b, x, args.runs, args.warmup)))
    return {
        "original": str(original),
        "purified": str(purified),
        "machine": machine(),
        "threads": args.threads,
        "spinning": args.spin,
        "warmup": args.warmup,
        "rows": rows,
        "skipped": skipped,
    }


def markdown(result: dict) -> str:
    lines = [
        "| runtime | batch | original ms | purified ms | ratio | original img/s | purified img/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['runtime']} | {r['batch']} | {r['original_ms']:.3f} | {r['purified_ms']:.3f} "
            f"| {r['ratio']:.3f} | {r['original_img_s']:,.0f} | {r['purified_img_s']:,.0f} |"
        )
    for name, why in result["skipped"].items():
        lines.append(f"\n{name}: not measured ({why})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("original", type=Path)
    parser.add_argument("purified", type=Path)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per cell (≥ 50)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")], default=[1, 32])
    parser.add_argument("--runtimes", default="auto", help="auto, or e.g. ort-cpu,ort-cuda")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument("--spin", action="store_true", help="let onnxruntime threads spin")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table, not JSON")
    args = parser.parse_args(argv)
    if args.runs < 50:
        parser.error("--runs must be at least 50 (the median of fewer is too noisy)")
    result = benchmark(args.original, args.purified, args)
    print(markdown(result) if args.markdown else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
