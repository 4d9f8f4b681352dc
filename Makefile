# rlhf-bench: `make run` (the smoke DAG) and `make test` (what .ci/run calls) install what is missing first.
SHELL := /bin/bash
VENV ?= .venv
CONFIG ?= config/config.yaml
CORES ?= all
# Extra pip arguments, e.g. PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu" where the CPU
# torch wheel (torch==2.13.0+cpu) is not on a local find-links path as on the project's machines.
PIP_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Nothing in `make run` (smoke) or `make test` may touch the hub: each failed look-up costs ~45 s of retries.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export MPLBACKEND := Agg
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install system-deps run imdb-cpu reference dag test test-fast lint format docs lock benchmark clean

install: $(STAMP)

$(STAMP): envs/requirements.lock envs/requirements-extras.lock pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes $(PIP_ARGS) -r envs/requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r envs/requirements-extras.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Snakemake reads --configfile before the Snakefile runs and names no file when it cannot: check it first.
# Both end by comparing the rerun with our own published results (reference/<profile>), as with a paper's.
run: install  ## the whole DAG on $(CONFIG) (default: the smoke profile), then the rerun against reference/
	python -m rlhf_bench.config $(CONFIG)
	snakemake --cores $(CORES) --configfile $(CONFIG)
	rlhf-bench compare --reference --profile $(CONFIG)

# seeds/000 Part 1 on the real IMDB data (../shared/data/imdb, see config/imdb-cpu.yaml): under an hour on 2 cores.
imdb-cpu: install  ## the imdb-cpu profile, timed per stage (benchmarks/out/imdb-cpu_dag.json)
	python benchmarks/smoke_dag.py --config config/imdb-cpu.yaml --keep . --target-minutes 60; timed=$$?; \
		rlhf-bench compare --reference --profile config/imdb-cpu.yaml && exit $$timed

reference: install  ## make results/<profile> of $(CONFIG) the project's reference bundle (reference/<profile>)
	rlhf-bench bundle --profile $(CONFIG)

dag: install  ## the DAG as a picture: dag.png
	snakemake --configfile $(CONFIG) --rulegraph | dot -Tpng > dag.png

# Debian's chromium and poppler-utils: the tests open the report in a headless browser and render its PDF.
system-deps:
	@if command -v chromium >/dev/null && command -v pdftoppm >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium poppler-utils >/dev/null) \
		|| echo "make: could not install chromium/poppler-utils: the report rendering tests will skip"; \
	else echo "make: chromium/pdftoppm missing and not root: the report rendering tests will skip"; fi

test: install system-deps cluster-test-if-possible  ## the whole test suite, the smoke DAG end to end included
	pytest -q

test-fast: install  ## unit tests only
	pytest -q -m "not slow and not dag"

lint: install
	ruff check src tests benchmarks scripts
	ruff format --check src tests benchmarks scripts
	snakefmt --check Snakefile rules/

format: install
	ruff check --fix src tests benchmarks scripts
	ruff format src tests benchmarks scripts
	snakefmt Snakefile rules/

docs: install  ## regenerate docs/paper-profile.md from config/paper.yaml's comments
	python scripts/paper_profile_doc.py

lock: install  ## recompile envs/requirements.lock from envs/requirements.in (needs uv)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile envs/requirements.in --generate-hashes --python-version 3.11 --find-links /opt/wheels \
		--index-strategy unsafe-best-match --no-header -o envs/requirements.lock

benchmark: install  ## time the smoke DAG and each rule (benchmarks/out/)
	python benchmarks/smoke_dag.py

clean:
	rm -rf results reports .snakemake dag.png

# Not in `make test`: needs root (podman, debootstrap), ~15 GB of disk and ~15 minutes. docs/containers.md.
.PHONY: container-test
container-test: install  ## build the image with podman, run the smoke DAG in it (--use-singularity), compare with the host
	bash tests/container/run.sh

# A one-node SLURM cluster on this machine (Debian's slurm-wlm, munge, slurmdbd, MariaDB; root), the smoke DAG on it
# through profiles/slurm, compared with a host run; every daemon stopped at the end. ~5 minutes on 2 cores.
# docs/cluster.md, "Clusters". `make test` runs it first where it can (root and apt-get; else one SKIP line);
# CLUSTER_TEST=0 leaves it out.
CLUSTER_TEST ?= 1
.PHONY: cluster-test cluster-test-if-possible
cluster-test: install  ## start a SLURM cluster here, run the smoke DAG on it (tests/test_cluster.py), stop it
	bash tests/cluster/run.sh

cluster-test-if-possible: install
	@if [ "$(CLUSTER_TEST)" = 0 ]; then echo "cluster-test: SKIP: CLUSTER_TEST=0"; \
	else bash tests/cluster/run.sh --if-possible; fi
