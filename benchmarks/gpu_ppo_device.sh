#!/usr/bin/env bash
# benchmarks/gpu_ppo.py on the lent GPU machine, in one call.
#
# That machine has Python 3.12 with its own torch (CUDA) and newer transformers, tokenizers and huggingface_hub, and
# reaches no package index. tokenizers 0.13.3 (transformers 4.33.1's pin) has no cp312 wheel, and transformers
# 4.33.1 checks the tokenizers version only when tokenizers is importable; so the documented stack's pure-Python
# wheels (versions read from envs/requirements.lock) are carried into a site directory of their own, put first on
# PYTHONPATH over the machine's torch, and gpu_ppo.py hides the machine's tokenizers and uses the slow GPT-2
# tokenizer. huggingface_hub goes along because transformers 4.33.1 refuses 1.x; datasets, dill, multiprocess,
# tyro, docstring-parser and typeguard because trl 0.7.4 imports them; jsonschema and its own needs because the
# project's config loader does.
#
#   bash benchmarks/gpu_ppo_device.sh prepare     # here, once: wheels, the GPT-2 tokenizer and an IMDB subset into
#                                                 # .devwheels/ (git-ignored: /.devwheels/ in .git/info/exclude)
#   bash benchmarks/gpu_ppo_device.sh [ARGS]      # there: the device tool's run, carry [".devwheels"]; ARGS go to
#                                                 # gpu_ppo.py; results in $OUT/gpu_ppo (else benchmarks/out/gpu_ppo)
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.devwheels
PINNED="transformers trl peft accelerate huggingface-hub datasets dill multiprocess tyro docstring-parser typeguard
        jsonschema jsonschema-specifications referencing rpds-py"

if [ "${1:-}" = prepare ]; then
    shared=${RLHF_BENCH_SHARED_DATA:-../shared/data}
    specs=()
    for name in $PINNED; do
        spec=$(grep -oE "^$name==[^ ]+" envs/requirements.lock) || { echo "$name is not in envs/requirements.lock" >&2; exit 1; }
        specs+=("$spec")
    done
    mkdir -p "$WHEELS/data/imdb"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d "$WHEELS" "${specs[@]}"
    cp -r "$shared/gpt2-tokenizer" "$WHEELS/data/"
    cp "$shared/imdb/imdb_train_small1000.jsonl" "$WHEELS/data/imdb/"
    du -sh "$WHEELS"
    exit 0
fi

[ -d "$WHEELS/data/gpt2-tokenizer" ] || { echo "no $WHEELS/: run 'bash $0 prepare' first and carry $WHEELS" >&2; exit 2; }
site=$(mktemp -d /tmp/rlhf-bench-site.XXXXXX)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$WHEELS"/*.whl
export PYTHONPATH="$site:$PWD/src" PYTHONUNBUFFERED=1 TQDM_DISABLE=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
out=${OUT:-benchmarks/out}/gpu_ppo
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia-smi.csv" 2>&1 || true
# 9 minutes at most, so that a device call of 10 still returns what was written (gpu_ppo.py writes after each part).
timeout 540 python3 benchmarks/gpu_ppo.py --out "$out" --tokenizer "$WHEELS/data/gpt2-tokenizer" \
    --imdb "$WHEELS/data/imdb/imdb_train_small1000.jsonl" "$@" 2> "$out/stderr.txt"
