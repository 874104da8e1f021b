#!/usr/bin/env bash
# One call on a lent NVIDIA machine (see benchmarks/NOTES.md, "GPU session"): set-up, the
# prepared gpu_check.py, the `gpu`/`trt` test markers, purify timing of the sample on CUDA vs
# the same machine's CPU, then benchmark cells on CUDA until the budget runs out.
#
#   OUT=dir bash benchmarks/gpu_session.sh [BUDGET_S]     # from the repo root
#
# It expects .devcarry/ (git-ignored): the onnx2torch wheel, Fashion-MNIST's four .gz files
# and a subset of benchmarks/cache. Every step has its own time limit and may fail alone;
# what each wrote comes back in $OUT (at most 8 files: logs are packed into tarballs).
set -u
BUDGET=${1:-420}
DEVICE=${DEVICE:-cuda}
T0=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - T0))); }
say() { echo "[gpu_session $(($(date +%s) - T0))s] $*" >&2; }
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" /tmp/purify /tmp/bench

say "set-up"
{
  python3 -m pip install -q --no-index --no-deps .devcarry/*.whl
  python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .
  mkdir -p /usr/share/datasets/fashion-mnist benchmarks/cache
  cp .devcarry/fmnist/*.gz /usr/share/datasets/fashion-mnist/
  cp -n .devcarry/cache/* benchmarks/cache/
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, onnxruntime as o; print(torch.__version__, torch.cuda.is_available(), o.__version__, o.get_available_providers())"
  nproc
} > "$OUT/setup.log" 2>&1
say "set-up done: $(tail -3 "$OUT/setup.log" | tr '\n' ' ')"

say "gpu_check.py (engines need TensorRT; the pytest markers run)"
timeout 150 python3 benchmarks/gpu_check.py --skip-purify --runs 20 \
  > "$OUT/gpu_check.json" 2> /tmp/purify/gpu_check.log

say "pytest -m 'gpu or trt' over the whole suite"
timeout 180 python3 -m pytest -q -p no:cacheprovider -m "gpu or trt" -rs tests \
  > /tmp/purify/pytest_gpu.log 2>&1

# The sample model, both presets, CUDA and this machine's CPU: wall time of each phase is
# in each report.json; the trigger is the sample's (MODEL_CARD.md).
for preset in auto paper; do
  for dev in "$DEVICE" cpu; do
    say "purify sample --preset $preset --device $dev"
    timeout 120 ulrl-edge purify sample_models/backdoored.onnx \
      --clean sample_models/clean -o "/tmp/purify/$dev-$preset.onnx" \
      --report "/tmp/purify/$dev-$preset" --trigger badnets:size=3,pos=br --target 0 \
      --preset "$preset" --device "$dev" --force --json \
      > "/tmp/purify/$dev-$preset.json" 2> "/tmp/purify/$dev-$preset.log"
  done
done
tar czf "$OUT/purify.tgz" -C /tmp purify

# Benchmark cells on the GPU, three processes side by side until the budget is spent:
# ANP at its full budget on the Fashion-MNIST CNNs, and the ViT cells not yet run on CPU.
B=$(($(left) - 25))
say "benchmark on $DEVICE for ${B}s"
run_bench() {
  local name=$1
  shift
  timeout "$B" python3 benchmarks/run.py --device "$DEVICE" --threads 5 \
    --out "/tmp/bench/$name" "$@" > "/tmp/bench/$name.log" 2>&1
}
VIT_DEFENSES=ulrl-auto,ulrl-paper,ft,fp,rnp,ibau,anp-200it,sau
run_bench anp --full --defenses anp --data fmnist --archs resnet,vgg --seeds 0 &
run_bench vit_rgb --full --archs vit --data rgb --seeds 0 --defenses "$VIT_DEFENSES" &
run_bench vit_fmnist --full --archs vit --data fmnist --seeds 1 --defenses "$VIT_DEFENSES" \
  --attacks blend,sig,wanet,trojan,lowfreq &
wait
cp benchmarks/cache/*vit* /tmp/bench/ 2> /dev/null
tar czf "$OUT/bench.tgz" -C /tmp bench
say "done in $(($(date +%s) - T0))s"
