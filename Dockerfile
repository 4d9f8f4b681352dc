# rlhf-bench on CUDA: the documented stack (transformers 4.33.1, trl 0.7.4, peft 0.5.0, accelerate 0.28.0).
# First version: builds and runs the stage CLIs (`python -m rlhf_bench.<stage>`), which is all Snakemake's
# --use-singularity needs inside the image. A hashed GPU lock replaces the ranges below (see issue tracker).
#
#   docker build -t rlhf-bench:0.1 .                      # or podman build
#   apptainer build rlhf-bench.sif docker-daemon://rlhf-bench:0.1
ARG BASE_IMAGE=nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04
FROM ${BASE_IMAGE}

# torch 2.1.2 (Dec 2023) is contemporaneous with trl 0.7.4 / transformers 4.33 and built against numpy 1.x.
ARG TORCH_VERSION=2.1.2
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu121

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/hf-cache RLHF_BENCH_IMAGE=rlhf-bench:0.1
RUN apt-get update && apt-get install -y --no-install-recommends python3.11 python3.11-venv git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /opt/rlhf-bench
COPY envs/requirements.in envs/requirements.in
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}" \
    && grep -v -e '^torch==' -e '^snakemake' -e '^ruff' -e '^snakefmt' -e '^pytest' envs/requirements.in \
       > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt "numpy<2" "pandas<3"
COPY pyproject.toml README.md ./
COPY config ./config
COPY src ./src
RUN pip install --no-deps .

RUN useradd --create-home --uid 1000 rlhf && mkdir -p /hf-cache && chown rlhf /hf-cache
USER rlhf
VOLUME ["/hf-cache"]
LABEL org.opencontainers.image.title="rlhf-bench" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.description="transformers==4.33.1 trl==0.7.4 peft==0.5.0 accelerate==0.28.0"
