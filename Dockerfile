# ulrl-edge container. CPU by default:
#   docker build -t ulrl-edge .
#   docker run --rm -v "$PWD:/work" ulrl-edge purify /work/model.onnx --clean /work/samples -o /work/purified.onnx
# NVIDIA base (x86 with CUDA/TensorRT, or L4T/JetPack on Jetson), e.g.:
#   docker build --build-arg BASE_IMAGE=nvcr.io/nvidia/tensorrt:24.08-py3 --build-arg EXTRAS=gpu,tensorrt -t ulrl-edge:gpu .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

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
RUN python3 -m pip install ".[${EXTRAS}]" \
    && useradd --create-home --uid 10001 ulrl

USER ulrl
WORKDIR /home/ulrl
ENTRYPOINT ["ulrl-edge"]
CMD ["--help"]
