"""The text of the Jetson bundle's ``build_engine.sh`` and ``README.md``.

Kept apart from :mod:`.bundle` so the file logic stays short. The script needs only bash and
``trtexec`` (JetPack puts it in ``/usr/src/tensorrt/bin``); ``python3``, when present, fills
in the sidecar's TensorRT version and GPU name.
"""

from __future__ import annotations

from ulrl_edge import __version__
from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.export.engine_meta import Profile
from ulrl_edge.export.formats import ExportOptions
from ulrl_edge.onnx_io.load import LoadedModel

_SIDECAR_PY = r"""
import hashlib, json, os, platform, subprocess, sys
engine = sys.argv[1]
meta = json.load(open("metadata.json"))
try:
    import tensorrt
    version = tensorrt.__version__
except Exception:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libnvinfer-bin"],
                         capture_output=True, text=True)
    version = out.stdout.strip() or None
gpu = None
try:
    out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                         capture_output=True, text=True)
    gpu = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else None
except OSError:
    pass
if gpu is None and os.path.exists("/proc/device-tree/model"):
    gpu = open("/proc/device-tree/model", "rb").read().rstrip(b"\0").decode(errors="replace")
meta.update(
    tensorrt_version=version,
    gpu={"name": gpu, "compute_capability": None},
    platform={"machine": platform.machine(), "jetson": os.path.exists("/etc/nv_tegra_release")},
    engine_sha256=hashlib.sha256(open(engine, "rb").read()).hexdigest(),
    built_by="trtexec (build_engine.sh)",
)
with open(engine + ".json.tmp", "w") as f:
    json.dump(meta, f, indent=2, sort_keys=True)
    f.write("\n")
os.replace(engine + ".json.tmp", engine + ".json")
"""


def script_text(source: LoadedModel, trtexec_line: str) -> str:
    """``build_engine.sh``: find trtexec, build, write the sidecar."""
    return f"""#!/usr/bin/env bash
# Build the TensorRT engine for model.onnx on THIS device (a Jetson, or x86 with TensorRT).
# An engine runs only on the GPU model and TensorRT version that built it: build it where it
# runs. Written by ulrl-edge {__version__} from {source.path.name} (sha256 {source.sha256}).
#
# Usage: ./build_engine.sh [ENGINE]    (default: model.engine beside this script)
# TRTEXEC=/path/to/trtexec overrides where trtexec is looked for.
set -euo pipefail
cd "$(dirname "$0")"
ENGINE="${{1:-model.engine}}"
TRTEXEC="${{TRTEXEC:-$(command -v trtexec || true)}}"
if [ -z "$TRTEXEC" ] && [ -x /usr/src/tensorrt/bin/trtexec ]; then
  TRTEXEC=/usr/src/tensorrt/bin/trtexec
fi
if [ -z "$TRTEXEC" ]; then
  echo "error: trtexec not found; on a Jetson it comes with JetPack (sudo apt install" \\
    "nvidia-jetpack; then /usr/src/tensorrt/bin/trtexec); or set TRTEXEC=/path/to/trtexec" >&2
  exit 5
fi

{trtexec_line}

# The sidecar: metadata.json plus what built the engine (TensorRT version, GPU).
if ! python3 - "$ENGINE" <<'PY'
{_SIDECAR_PY.strip()}
PY
then
  echo "warning: python3 could not fill in the TensorRT version and GPU;" \\
    "copying metadata.json as $ENGINE.json" >&2
  cp metadata.json "$ENGINE.json"
fi
echo "wrote $ENGINE and $ENGINE.json"
"""


def readme_text(
    source: LoadedModel,
    spec: PreprocessSpec,
    options: ExportOptions,
    profile: Profile,
    command: str,
) -> str:
    """``README.md`` for the technician on the device."""
    shapes = (
        f"fixed input shape {list(profile.static)}"
        if profile.static is not None
        else f"batch {profile.min[0]} to {profile.max[0]} (tuned for {profile.opt[0]})"
    )
    dla = f", DLA core {options.dla} with GPU fallback" if options.dla is not None else ""
    return f"""# TensorRT bundle for `{source.path.name}`

Made by ulrl-edge {__version__}. Source SHA-256: `{source.sha256}`.

A TensorRT engine runs only on the GPU model and the TensorRT version that built it, so it is
built here, on the device, from the ONNX file:

```bash
./build_engine.sh            # writes model.engine and model.engine.json
```

| file | what it is |
| --- | --- |
| `model.onnx` | the model; its metadata key `ulrl_edge.preprocess` holds the preprocessing |
| `preprocess.json` | how an image becomes the input: layout, size, channels, scale, mean, std |
| `metadata.json` | the engine's sidecar to be; the script adds the TensorRT version and GPU |
| `build_engine.sh` | runs `trtexec` (on `PATH` or `/usr/src/tensorrt/bin`, JetPack's place) |

Engine: input `{profile.input_name}`, {shapes}, precision {options.precision}{dla},
workspace {options.workspace} MiB. The command:

```bash
{command}
```

Input: `(pixel / 255 * {spec.scale:g} - mean {list(spec.mean)}) / std {list(spec.std)}`,
{spec.channels}, {spec.size[0] if spec.size else "?"}×{spec.size[1] if spec.size else "?"},
layout {spec.layout}.

Check the engine before use, where ulrl-edge is installed on the device:
`ulrl-edge verify model.engine --data CLEAN_SAMPLES --runtime tensorrt`
(or time it: `trtexec --loadEngine=model.engine`).

Requirements: TensorRT 8.6 or newer with `trtexec` (JetPack 6 has TensorRT 10). TensorRT 11
dropped `--fp16` and `--int8`: there, only an fp32 bundle builds as it is.
"""
