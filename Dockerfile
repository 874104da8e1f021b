# ulrl-edge container: the `ulrl-edge` command as the entry point, run as a non-root user.
#
# CPU (default; PyTorch's CPU wheels keep the image small):
#   docker build -t ulrl-edge .
#   docker run --rm -v "$PWD:/work" ulrl-edge purify /work/model.onnx --clean /work/samples -o /work/purified.onnx
#
# x86 with an NVIDIA GPU: a TensorRT base (it has CUDA, TensorRT 10 and trtexec), CUDA PyTorch
# from PyPI. Run with the NVIDIA container toolkit:
#   docker build -t ulrl-edge:trt \
#     --build-arg BASE_IMAGE=nvcr.io/nvidia/tensorrt:24.08-py3 \
#     --build-arg TORCH_INDEX_URL=https://pypi.org/simple .
#   docker run --rm --gpus all -v "$PWD:/work" ulrl-edge:trt export /work/purified.onnx \
#     --format tensorrt --fp16 -o /work/purified.engine
#
# Jetson (aarch64, JetPack 6 = L4T r36): the L4T JetPack base has CUDA, TensorRT 10 and its
# Python bindings; the engine runner then uses libcudart, so PyTorch may stay CPU-only. It must
# be built on a Jetson (or with an aarch64 builder) and run with the NVIDIA runtime:
#   docker build -t ulrl-edge:jetson \
#     --build-arg BASE_IMAGE=nvcr.io/nvidia/l4t-jetpack:r36.4.0 \
#     --build-arg TORCH_INDEX_URL=https://pypi.org/simple .
#   docker run --rm --runtime nvidia -v "$PWD:/work" ulrl-edge:jetson export ...
#
# Build arguments: BASE_IMAGE (any image with python3 >= 3.10 and pip), TORCH_INDEX_URL (an
# extra package index for torch/torchvision), EXTRAS (the ulrl-edge extras, e.g. "report" or
# "report,tensorrt" for an x86 base without TensorRT). Everything is installed at build time:
# the container installs nothing when it runs.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRAS=report
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/ulrl-edge
COPY pyproject.toml README.md ./
COPY ulrl_edge ./ulrl_edge
COPY cli ./cli
COPY sample_models ./sample_models

# The project's own dependency ranges (pyproject.toml) are the pins; a local path, not an index
# package. useradd: a fixed numeric uid, so files written to mounted volumes have a known owner.
RUN python3 -m pip install --no-cache-dir --extra-index-url "${TORCH_INDEX_URL}" \
        "/opt/ulrl-edge[${EXTRAS}]" \
    && ulrl-edge --version \
    && useradd --create-home --uid 10001 --user-group ulrl

USER 10001
WORKDIR /home/ulrl
ENTRYPOINT ["ulrl-edge"]
CMD ["--help"]
