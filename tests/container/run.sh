#!/usr/bin/env bash
# `make container-test`: build the image with podman, run the smoke DAG in it with `snakemake --use-singularity`
# (Snakemake's real apptainer code path, served by the podman adapter tests/container/apptainer), check from
# provenance.json that every job ran inside the image, and compare its results with a run on the host.
#
# It follows docs/containers.md step by step (build, save, convert to a .sif, run Snakemake on it; a registry
# reference; the Apptainer definition, which the adapter builds as a podman build), with what
# this machine kind needs on top: no registry, so the base image is a debootstrapped Debian 12 (it has the same
# python3.11 + venv from apt as the default Ubuntu 22.04 CUDA base); the CPU lock (envs/requirements.lock, the
# host's stack: torch 2.13.0+cpu) instead of the GPU lock, so that the container run can be compared with a host
# run file by file; podman settings in tests/container/containers.conf (runc, ulimits); the host's CA bundle
# mounted into the build (TLS is intercepted here). Not part of `make test`: it needs root, ~15 GB of disk and
# about 15 minutes.
#
# Environment: RLHF_BENCH_CONTAINER_WORK (default /var/tmp/rlhf-bench-container-test: runs, logs, the .sif),
# KEEP_IMAGE=1 keeps the test image (default: removed at the end; the 130 MB Debian base is kept for next time),
# CONFIG (default config/config.yaml, the smoke profile).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/container"
WORK="${RLHF_BENCH_CONTAINER_WORK:-/var/tmp/rlhf-bench-container-test}"
CONFIG="$(realpath "${CONFIG:-$ROOT/config/config.yaml}")"
IMAGE="localhost/rlhf-bench:container-test"
BASE="localhost/rlhf-bench-base:debian-bookworm"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
NEED_GB=15
START=$SECONDS

say() { printf '[container-test %4ds] %s\n' "$((SECONDS - START))" "$*"; }
die() {
    printf 'container-test: error: %s\n' "$*" >&2
    exit 1
}
step() { # step NAME LOG COMMAND...: run quietly into LOG; on failure show its tail and stop
    local name=$1 log=$2
    shift 2
    local t0=$SECONDS
    if ! "$@" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "$name failed (log: $log)"
    fi
    say "$name: $((SECONDS - t0)) s"
}

# --- preconditions: one line each ------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "needs root (rootful podman and debootstrap); run it as root, or skip it: make test does not need it"
[ -x "$ROOT/.venv/bin/snakemake" ] || die "$ROOT/.venv has no snakemake: run \`make install\` first (make container-test does)"
[ -f "$CONFIG" ] || die "config $CONFIG: no such file"
missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    say "installing podman, runc and debootstrap from Debian (missing: ${missing[*]})"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc debootstrap uidmap \
        slirp4netns fuse-overlayfs netavark aardvark-dns containernetworking-plugins >/dev/null
fi
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
mkdir -p "$WORK"
storage="$(podman info --format '{{.Store.GraphRoot}}')"
for dir in "$WORK" "$storage"; do
    free=$(df --output=avail -BG "$dir" | tail -1 | tr -dc 0-9)
    [ "$free" -ge "$NEED_GB" ] || die "only ${free} GB free under $dir; the build needs ~${NEED_GB} GB at its peak"
done
chmod +x "$HERE/apptainer"
export PATH="$HERE:$ROOT/.venv/bin:$PATH" # the adapter is `apptainer` on PATH, first
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MPLBACKEND=Agg
[ "$(command -v apptainer)" = "$HERE/apptainer" ] || die "another apptainer shadows the test adapter on PATH"
rm -rf "$WORK/host" "$WORK/container" "$WORK/registry" "$WORK/def" "$WORK/rootfs" "$WORK"/rlhf-bench{,-def}.{tar,sif}
mkdir -p "$WORK/logs"
say "work directory $WORK; podman $(podman --version | awk '{print $3}') with runc; config $CONFIG"

cleanup() {
    rm -rf "$WORK/rootfs" "$WORK/rlhf-bench.tar"
    [ "${KEEP_IMAGE:-0}" = 1 ] && return
    podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
    if [ -f "$WORK/rlhf-bench-def.sif" ]; then
        podman rmi -f "$(sed -n 's/^id=//p' "$WORK/rlhf-bench-def.sif")" >/dev/null 2>&1 || true
    fi
    podman image prune -f --filter "label=org.opencontainers.image.title=rlhf-bench" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# --- 1. the base image: Debian 12 from debootstrap (the CUDA base needs a registry) ----------------------------
if podman image exists "$BASE"; then
    say "base image $BASE: reused"
else
    # ca-certificates in the base: the build mounts the host's bundle over it, which its postinst cannot replace.
    step "debootstrap (Debian 12, minbase)" "$WORK/logs/debootstrap.log" \
        debootstrap --variant=minbase --include=ca-certificates bookworm "$WORK/rootfs" http://deb.debian.org/debian
    rm -rf "$WORK/rootfs"/var/cache/apt/archives/*.deb "$WORK/rootfs"/var/lib/apt/lists/*
    step "podman import of the base" "$WORK/logs/import.log" \
        sh -c "tar -C '$WORK/rootfs' -c . | podman import --change 'CMD [\"/bin/bash\"]' - '$BASE'"
    rm -rf "$WORK/rootfs"
fi

# --- 2. docs/containers.md: podman build ... -t rlhf-bench:0.1.0 . ---------------------------------------------------------
# The CPU lock's torch wheel: this machine's copy, or the PyTorch CPU index.
vcs_ref="$(git -C "$ROOT" rev-parse HEAD)"
pip_volumes=()
if compgen -G "/opt/wheels/torch-2.13.0+cpu-*.whl" >/dev/null; then
    pip_args="--find-links /opt/wheels"
    pip_volumes+=(--volume /opt/wheels:/opt/wheels:ro)
else
    pip_args="--extra-index-url https://download.pytorch.org/whl/cpu"
fi
[ -f "$CA_BUNDLE" ] && pip_volumes+=(--volume "$CA_BUNDLE:$CA_BUNDLE:ro")
build_start=$SECONDS
step "podman build (CPU lock)" "$WORK/logs/build.log" \
    podman build --network host "${pip_volumes[@]}" --build-arg "BASE_IMAGE=$BASE" \
    --build-arg LOCK=envs/requirements.lock --build-arg "PIP_ARGS=$pip_args" --build-arg "VCS_REF=$vcs_ref" \
    --build-arg "IMAGE_REF=$IMAGE" -t "$IMAGE" "$ROOT"
build_seconds=$((SECONDS - build_start))
image_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
podman run --rm "$IMAGE" cat /opt/rlhf-bench/image.json >"$WORK/image.json"
[ "$(podman run --rm "$IMAGE" id -u)" != 0 ] || die "the image runs as root; the Dockerfile should set USER"
say "image $IMAGE: $((image_bytes / 1000000)) MB, digest $(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$WORK/image.json")"

# --- 3. docs/containers.md: podman save ... && apptainer build rlhf-bench.sif docker-archive://rlhf-bench.tar ---------------
step "podman save" "$WORK/logs/save.log" podman save --format docker-archive -o "$WORK/rlhf-bench.tar" "$IMAGE"
step "apptainer build rlhf-bench.sif (adapter)" "$WORK/logs/sif.log" \
    apptainer build "$WORK/rlhf-bench.sif" "docker-archive://$WORK/rlhf-bench.tar"
rm -f "$WORK/rlhf-bench.tar"

# --- 4. the same DAG on the host -------------------------------------------------------------------------------
snake=(snakemake -s "$ROOT/Snakefile" --cores all --configfile "$CONFIG")
host_start=$SECONDS
step "smoke DAG on the host" "$WORK/logs/host.log" "${snake[@]}" --directory "$WORK/host"
host_seconds=$((SECONDS - host_start))

# --- 5. docs/containers.md: snakemake --cores all --use-singularity --apptainer-args "--nv" --config container=rlhf-bench.sif --
# --directory keeps this run out of the checkout, so the checkout is bound too: the claims rule reads
# config/claims.yaml from it (run from the checkout's root, as docs/containers.md does, Snakemake binds it as the home).
# --nv: no GPU here; the adapter says so and goes on, as Apptainer does.
apptainer_args="--nv --bind $ROOT"
container_start=$SECONDS
step "smoke DAG in the container (snakemake --use-singularity)" "$WORK/logs/container.log" \
    "${snake[@]}" --directory "$WORK/container" --use-singularity --apptainer-args "$apptainer_args" \
    --config "container=$WORK/rlhf-bench.sif"
container_seconds=$((SECONDS - container_start))
grep -q "Activating singularity image $WORK/rlhf-bench.sif" "$WORK/logs/container.log" ||
    die "Snakemake did not run its jobs in the image (no 'Activating singularity image' in $WORK/logs/container.log)"

# --- 6. docs/containers.md, registry route: --config container=docker://REGISTRY/rlhf-bench:TAG (Snakemake pulls it) --------
target="results/$(python -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["profile"])' "$CONFIG")"
experiment="$(python -c 'import sys,yaml; print(next(iter(yaml.safe_load(open(sys.argv[1]))["experiments"])))' "$CONFIG")"
step "one job from docker://$IMAGE (snakemake pulls)" "$WORK/logs/registry.log" \
    "${snake[@]}" --directory "$WORK/registry" --use-singularity --apptainer-args "$apptainer_args" \
    --config "container=docker://$IMAGE" -- "$target/$experiment/data/checksums.json"
grep -q "Pulling singularity image docker://$IMAGE" "$WORK/logs/registry.log" || die "Snakemake did not pull docker://$IMAGE"

# --- 7. docs/containers.md: apptainer build --fakeroot --build-arg VCS_REF=... rlhf-bench.sif envs/apptainer.def -------------
# The adapter builds a definition as Apptainer would (%files, then %post under sh -e, %environment, %labels,
# %test) with podman; then the data and reward-model jobs of one experiment run in it.
(cd "$ROOT" && RLHF_BENCH_PODMAN_BUILD_ARGS="${pip_volumes[*]}" step "apptainer build from envs/apptainer.def (adapter)" \
    "$WORK/logs/def-build.log" apptainer build --fakeroot --build-arg "BASE_IMAGE=$BASE" \
    --build-arg LOCK=envs/requirements.lock --build-arg "PIP_ARGS=$pip_args" --build-arg "VCS_REF=$vcs_ref" \
    --build-arg "IMAGE_REF=rlhf-bench-def.sif" "$WORK/rlhf-bench-def.sif" envs/apptainer.def)
def_image="$(sed -n 's/^id=//p' "$WORK/rlhf-bench-def.sif")"
podman run --rm "$def_image" cat /opt/rlhf-bench/image.json >"$WORK/image-def.json"
# Same base, same lock: the same software, so the same digest as the Dockerfile's image.
python -c 'import json, sys; a, b = (json.load(open(p))["digest"] for p in sys.argv[1:]); sys.exit(a != b)' \
    "$WORK/image.json" "$WORK/image-def.json" || die "envs/apptainer.def and the Dockerfile installed different software"
step "two jobs in the definition's image" "$WORK/logs/def.log" \
    "${snake[@]}" --directory "$WORK/def" --use-singularity --apptainer-args "$apptainer_args" \
    --config "container=$WORK/rlhf-bench-def.sif" -- "$target/$experiment/reward/rm_metrics.json"

# --- 8. provenance says every job ran in the image; results match the host's ----------------------------------
python "$HERE/compare.py" --host "$WORK/host" --container "$WORK/container" --image-info "$WORK/image.json" \
    --partial "$WORK/registry" "$WORK/image.json" --partial "$WORK/def" "$WORK/image-def.json" \
    --runtime podman | tee "$WORK/logs/compare.log"

say "passed: build ${build_seconds} s, host DAG ${host_seconds} s, container DAG ${container_seconds} s," \
    "total $((SECONDS - START)) s; image $((image_bytes / 1000000)) MB"
