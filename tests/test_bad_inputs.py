"""Bad inputs as a hostile but fair user gives them (issue 12): configs, CLI arguments, paths, a second copy of a
job, corrupted outputs. Each case asserts exit status 2, one error line naming the file (or the argument) and the
field, no traceback, and that nothing a rerun would trust is left behind. The data files' cases are in
test_bad_inputs_data.py, the claims' and analysis stages' in test_bad_inputs_claims.py."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from bad_input import error_line, nothing_trusted, snapshot
from conftest import SEED, evaluate_args, tiny_config
from rlhf_bench.io import checksum_tree, write_json
from rlhf_bench.train import data, evaluate, ppo

EXPERIMENT = "imdb-negative"


def call(main, argv) -> tuple[int, str]:
    """A stage CLI in-process: its exit status (argparse's SystemExit included) and what it printed on stderr."""
    try:
        return main([str(a) for a in argv]), ""
    except SystemExit as exit_:
        return int(exit_.code), ""


def run_stage(main, argv, capsys) -> tuple[int, str]:
    capsys.readouterr()
    status, _ = call(main, argv)
    return status, capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- configs


def _set(config: dict, dotted: str, value) -> dict:
    *blocks, key = dotted.split(".")
    target = config
    for block in blocks:
        target = target[block]
    target[key] = value
    return config


def _exp(dotted: str) -> str:
    return f"experiments.{EXPERIMENT}.{dotted}"


# (id, how the file is written: a change to the tiny config or the raw text, what the line must name)
CONFIG_CASES = [
    ("empty-file", "", ["(top level)", "is empty"]),
    ("yaml-list", "- profile: smoke\n- seeds: [0]\n", ["(top level)", "is a list"]),
    ("yaml-scalar", "just words\n", ["(top level)", "is a str"]),
    ("yaml-garbage", "profile: [smoke\nseeds: {0\n", ["not valid YAML"]),
    ("non-utf8", b"profile: sm\xffoke\n", ["not UTF-8"]),
    ("unknown-top-level-key", {"seedz": [0]}, ["unknown key 'seedz'"]),
    ("unknown-experiment-key", {_exp("ppo.stepz"): 3}, ["ppo", "unknown key 'stepz'"]),
    ("seeds-not-integers", {"seeds": ["a", "b"]}, ["seeds.", "integer"]),
    ("seed-negative", {"seeds": [-1]}, ["seeds.0"]),
    ("nan-learning-rate", {_exp("ppo.learning_rate"): math.nan}, [_exp("ppo.learning_rate"), "finite"]),
    ("inf-temperature", {_exp("generation.temperature"): math.inf}, [_exp("generation.temperature"), "finite"]),
    ("zero-steps", {_exp("ppo.steps"): 0}, ["ppo.steps"]),
    ("steps-as-string", {_exp("ppo.steps"): "ten"}, ["ppo.steps"]),
    ("renamed-key", {_exp("ppo.lora_r"): 8}, [_exp("ppo.lora_r"), "ppo.lora.r"]),
    ("bad-profile-name", {"profile": "../elsewhere"}, ["profile"]),
    ("bad-experiment-name", {"experiments": {"a b": {}}}, ["experiments", "'a b'"]),
    ("empty-results-dir", {"results_dir": ""}, ["results_dir"]),
    ("results-dir-newline", {"results_dir": "a\nb"}, ["results_dir"]),
    ("policy-sft-without-sft", {_exp("sft.enabled"): False}, [_exp("policy"), "sft.enabled"]),
    ("prompt-words-reversed", {_exp("data.prompt_words"): [9, 2]}, [_exp("data.prompt_words")]),
    ("too-few-train-prompts", {_exp("data.n_prompts_train"): 2}, [_exp("data.n_prompts_train")]),
    ("classifier-judge-unnamed", {_exp("evaluate.judge"): "classifier", _exp("evaluate.judge_model"): ""},
     [_exp("evaluate.judge_model")]),
    ("unknown-reward", {_exp("ppo.reward"): "vibes"}, ["ppo.reward"]),
    ("deviation-names-nothing", {_exp("deviations"): [{"setting": "ppo.nothing", "sound": 1, "documented": 2,
                                                         "why": "x"}]}, ["deviations[0]"]),
]  # fmt: skip


def _mini_batch_case() -> tuple:
    """trl asserts that mini_batch_size divides batch_size whatever the reward (it was only checked for one)."""
    change = {
        "experiments.instruct-short.ppo.reward": "negative_word_count",
        "experiments.instruct-short.ppo.batch_size": 8,
        "experiments.instruct-short.ppo.mini_batch_size": 3,
    }
    return ("mini-batch-not-dividing-any-reward", change, ["experiments.instruct-short.ppo.mini_batch_size"])


@pytest.mark.parametrize(("change", "names"), [c[1:] for c in [*CONFIG_CASES, _mini_batch_case()]],
                         ids=[c[0] for c in [*CONFIG_CASES, _mini_batch_case()]])  # fmt: skip
def test_a_bad_config_is_one_line_naming_file_and_field(tmp_path, capsys, change, names):
    path = tmp_path / "bad.yaml"
    if isinstance(change, bytes):
        path.write_bytes(change)
    elif isinstance(change, str):
        path.write_text(change)
    else:
        config = tiny_config()
        for dotted, value in change.items():
            if dotted == "experiments":
                config["experiments"].update(value)
            else:
                _set(config, dotted, value)
        path.write_text(yaml.safe_dump(config))
    out = tmp_path / "data"

    status, err = run_stage(data.main, ["--config", path, "--experiment", EXPERIMENT, "--out", out], capsys)

    assert status == 2
    error_line(err, path, *names)
    nothing_trusted(out)


def test_the_good_config_of_the_cases_runs(tmp_path, capsys):
    """The control of the cases above: the tiny config itself, written the same way, runs."""
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(tiny_config()))
    status, err = run_stage(data.main, ["--config", path, "--experiment", EXPERIMENT, "--out", tmp_path / "d"], capsys)
    assert status == 0, err
    assert (tmp_path / "d" / "checksums.json").is_file()


@pytest.mark.parametrize(
    ("name", "text", "names"),
    [
        ("missing.yaml", None, ["No such file"]),
        ("folder.yaml", "dir", ["Is a directory"]),
        ("broken.json", '{"profile": "smoke",', ["not valid JSON"]),
        ("list.json", "[1, 2]", ["(top level)", "is a list"]),
    ],
    ids=["missing-config", "config-is-a-folder", "json-config-truncated", "json-config-a-list"],
)
def test_a_config_path_that_cannot_be_read_is_named(tmp_path, capsys, name, text, names):
    path = tmp_path / name
    if text == "dir":
        path.mkdir()
    elif text is not None:
        path.write_text(text)
    status, err = run_stage(data.main, ["--config", path, "--experiment", EXPERIMENT, "--out", tmp_path / "d"], capsys)
    assert status == 2
    error_line(err, path, *names)
    nothing_trusted(tmp_path / "d")


# ----------------------------------------------------------------------------------------- CLI arguments


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config()))
    return path


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--experiment", EXPERIMENT, "--out", "{out}"], ["--config"]),
        (["--config", "{config}", "--out", "{out}"], ["--experiment"]),
        (["--config", "{config}", "--experiment", "imdb-negatve", "--out", "{out}"], ["{config}", "imdb-negatve"]),
        (["--config", "{config}", "--experiment", EXPERIMENT, "--out", "{out}", "--stray"], ["--stray"]),
    ],
    ids=["config-missing", "experiment-missing", "experiment-unknown", "unknown-argument"],
)
def test_bad_arguments_of_a_stage_are_one_line(tmp_path, capsys, config_file, argv, names):
    out = tmp_path / "out"
    fill = {"{config}": str(config_file), "{out}": str(out)}
    argv = [fill.get(a, a) for a in argv]
    status, err = run_stage(data.main, argv, capsys)
    assert status == 2
    error_line(err, *[fill.get(n, n) for n in names])
    nothing_trusted(out)


def _ppo_argv(root: Path, common: list[str], models: list[str], seed="0", out=None) -> list[str]:
    return [*common, "--seed", seed, "--data", root / "data", *models, "--out", out or root / "new-ppo"]


@pytest.mark.parametrize(
    ("seed", "names"),
    [("-1", ["--seed", "negative"]), ("abc", ["--seed", "'abc' is not an integer"]), ("1.5", ["--seed", "'1.5'"])],
    ids=["seed-negative", "seed-not-a-number", "seed-a-float"],
)
def test_a_bad_seed_is_refused_before_any_work(chain, tmp_path, capsys, seed, names):
    root, common, models = chain
    out = tmp_path / "ppo"
    status, err = run_stage(ppo.main, _ppo_argv(root, common, models, seed=seed, out=out), capsys)
    assert status == 2
    error_line(err, *names)
    nothing_trusted(out)


@pytest.mark.parametrize(
    ("drop", "names"),
    [
        ("--sft", ["--sft: missing", "policy is 'sft'"]),
        ("--reward", ["--reward: missing", "ppo.reward is 'reward_model'"]),
    ],
    ids=["ppo-without-sft", "ppo-without-reward"],
)
def test_a_model_the_config_needs_must_be_given(chain, tmp_path, capsys, drop, names):
    root, common, models = chain
    kept = [a for i, a in enumerate(models) if drop not in (a, models[i - 1] if i else None)]
    out = tmp_path / "ppo"
    status, err = run_stage(ppo.main, _ppo_argv(root, common, kept, out=out), capsys)
    assert status == 2
    error_line(err, common[1], *names)
    nothing_trusted(out)


def test_evaluate_without_reward_model_is_one_line(chain, tmp_path, capsys):
    root, common, models = chain
    out = tmp_path / "evaluate"
    argv = [a for a in evaluate_args(root, common, models, out) if a not in ("--reward", str(root / "reward"))]
    status, err = run_stage(evaluate.main, argv, capsys)
    assert status == 2
    error_line(err, "--reward: missing", "ppo.reward is 'reward_model'")
    nothing_trusted(out)


@pytest.mark.parametrize(
    ("flag", "where", "names"),
    [
        ("--sft", "reward", ["--sft", "stage 'reward'", "not 'sft'"]),
        ("--reward", "sft", ["--reward", "stage 'sft'", "not 'reward'"]),
        ("--sft", "nowhere", ["--sft", "not a folder"]),
        ("--reward", "data/checksums.json", ["--reward", "not a folder"]),
    ],
    ids=["sft-is-the-reward-folder", "reward-is-the-sft-folder", "sft-folder-missing", "reward-is-a-file"],
)
def test_a_model_folder_of_the_wrong_kind_is_refused(chain, tmp_path, capsys, flag, where, names):
    root, common, models = chain
    swapped = [str(root / where) if models[i - 1] == flag else a for i, a in enumerate(models)]
    out = tmp_path / "ppo"
    status, err = run_stage(ppo.main, _ppo_argv(root, common, swapped, out=out), capsys)
    assert status == 2
    error_line(err, str(root / where), *names)
    nothing_trusted(out)


@pytest.mark.parametrize(
    ("data_dir", "names"),
    [("nowhere", ["checksums.json", "missing"]), ("sft", ["checksums.json", "missing", "rule 'sft'"])],
    ids=["data-folder-missing", "data-is-the-sft-folder"],
)
def test_a_data_folder_without_checksums_is_named(chain, tmp_path, capsys, data_dir, names):
    root, common, models = chain
    argv = [*common, "--seed", "0", "--data", root / data_dir, *models, "--out", tmp_path / "ppo"]
    status, err = run_stage(ppo.main, argv, capsys)
    assert status == 2
    error_line(err, root / data_dir, *names)
    nothing_trusted(tmp_path / "ppo")


# -------------------------------------------------------------------------------------------------- paths


@pytest.fixture
def data_argv(config_file, tmp_path):
    return lambda out: ["--config", config_file, "--experiment", EXPERIMENT, "--out", out]


def test_out_that_is_a_file_is_refused(tmp_path, capsys, data_argv):
    out = tmp_path / "data"
    out.write_text("a file where the stage's folder goes\n")
    status, err = run_stage(data.main, data_argv(out), capsys)
    assert status == 2
    error_line(err, out, "--out is a file")
    assert out.read_text() == "a file where the stage's folder goes\n"


def test_out_below_a_file_is_refused(tmp_path, capsys, data_argv):
    (tmp_path / "results").write_text("")
    out = tmp_path / "results" / "data"
    status, err = run_stage(data.main, data_argv(out), capsys)
    assert status == 2
    error_line(err, tmp_path / "results", "a file is in the way")


@pytest.mark.parametrize(
    ("code", "names"),
    [(errno.ENOSPC, ["disk is full"]), (errno.EROFS, ["read-only"]), (errno.EACCES, ["permission denied"]),
     (errno.EDQUOT, ["quota"])],
    ids=["disk-full", "read-only-file-system", "permission-denied", "quota-exceeded"],
)  # fmt: skip
def test_a_failing_disk_leaves_the_previous_run_whole(tmp_path, capsys, data_argv, monkeypatch, code, names):
    """The data stage fails while writing its third file: the folder still holds the previous run, untouched
    (before, new prompt files were left beside old pairs and checksums)."""
    out = tmp_path / "data"
    assert run_stage(data.main, data_argv(out), capsys)[0] == 0
    before = snapshot(out)
    written = []
    real = data.atomic_write_text

    def failing(path, text):
        written.append(path)
        if len(written) == 3:
            raise OSError(code, "simulated", str(path))
        return real(path, text)

    monkeypatch.setattr(data, "atomic_write_text", failing)
    status, err = run_stage(data.main, data_argv(out), capsys)
    assert status == 2
    error_line(err, written[-1].name, *names)
    nothing_trusted(out, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "tiny.yaml"]  # no staging folder, no lock


def test_a_live_copy_of_the_same_job_is_refused(tmp_path, capsys, data_argv):
    """An orphaned job (Snakemake killed, `--rerun-incomplete` started again) still holds the folder's lock."""
    out = tmp_path / "data"
    with open(tmp_path / ".data.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242 on host node7\n")
        held.flush()
        status, err = run_stage(data.main, data_argv(out), capsys)
    assert status == 2
    error_line(err, out, "another copy", "pid 4242 on host node7")
    nothing_trusted(out)
    assert run_stage(data.main, data_argv(out), capsys)[0] == 0  # once the holder is gone, the job runs


def test_what_a_killed_run_left_is_cleared_and_never_trusted(tmp_path, capsys, data_argv):
    """A staging folder and a lock file left by a SIGKILL: the next run removes the one and takes the other."""
    out = tmp_path / "data"
    (tmp_path / ".data.staging").mkdir()
    (tmp_path / ".data.staging" / "prompts_train.jsonl").write_text("half\n")
    (tmp_path / ".data.lock").write_text("pid 1 on host gone\n")
    assert run_stage(data.main, data_argv(out), capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "tiny.yaml"]
    assert (out / "prompts_train.jsonl").read_text() != "half\n"


def test_a_failed_ppo_run_keeps_the_old_adapter_and_log_together(chain, tmp_path, capsys, monkeypatch):
    """A ppo run that stops mid-training (here a NaN at the first finite check) leaves the previous run's adapter,
    value head and train_log.csv as they were, never a new log beside an old adapter."""
    root, common, models = chain
    out = tmp_path / "ppo"
    shutil.copytree(root / "ppo", out)
    before = snapshot(out)

    def nan(named, where):
        raise ppo.StageError(f"{where}: non-finite values {{'kl': nan}}. Fix: lower the learning rate.")

    monkeypatch.setattr(ppo.models, "check_finite", nan)
    status, err = run_stage(ppo.main, _ppo_argv(root, common, models, seed=str(SEED), out=out), capsys)
    assert status == 2
    error_line(err, "step 0", "non-finite")
    nothing_trusted(out, before)


def test_the_hub_cache_must_be_a_folder(tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.write_text("")
    config = tiny_config()
    config["hub_cache"] = str(cache)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    status, err = run_stage(data.main, ["--config", path, "--experiment", EXPERIMENT, "--out", tmp_path / "d"], capsys)
    assert status == 2
    error_line(err, path, "hub_cache", str(cache))
    nothing_trusted(tmp_path / "d")


# ------------------------------------------------------------------------------------- corrupted outputs


def _rerecord(folder: Path) -> None:
    """Record the folder's files as they are now: damage that a checksum cannot see (a producer that wrote a
    broken file), so that the loader's own check is what is tested."""
    record = folder / "provenance.json"
    provenance = json.loads(record.read_text())
    provenance["outputs"] = checksum_tree(folder)
    write_json(record, provenance)


@contextlib.contextmanager
def _copy_of(chain, tmp_path):
    root, common, models = chain
    copy = tmp_path / "run"
    shutil.copytree(root, copy)
    yield copy, common, [a.replace(str(root), str(copy)) for a in models]


@pytest.mark.parametrize(
    ("damage", "names"),
    [
        ("ppo/adapter/adapter_model.safetensors:truncate", ["adapter_model.safetensors", "ppo"]),
        ("ppo/adapter/adapter_model.safetensors:delete", ["adapter_model.safetensors", "a pickle is never loaded"]),
        ("sft/model/model.safetensors:truncate", ["sft/model/model.safetensors", "damaged", "rerun the rule 'sft'"]),
        ("reward/model/model.safetensors:truncate", ["model.safetensors", "damaged", "rerun the rule 'reward'"]),
        ("ppo/adapter/adapter_model.bin:create", ["adapter_model.bin", "a pickle"]),
        ("sft/provenance.json:delete", ["provenance.json", "missing", "'sft'"]),
        ("reward/provenance.json:garbage", ["provenance.json", "not valid JSON"]),
        ("data/checksums.json:delete", ["checksums.json", "missing", "'data'"]),
        ("data/checksums.json:garbage", ["checksums.json", "not valid JSON"]),
        ("data/pairs_test.jsonl:append", ["pairs_test.jsonl", "sha256", "rerun the rule 'data'"]),
        ("ppo/provenance.json:no-outputs", ["provenance.json", "'outputs'"]),
    ],
    ids=lambda d: d if isinstance(d, str) else None,
)
def test_a_damaged_output_stops_its_reader_in_one_line(chain, tmp_path, capsys, damage, names):
    relative, how = damage.split(":")
    with _copy_of(chain, tmp_path) as (copy, common, models):
        target = copy / relative
        stage_folder = copy / relative.split("/")[0]
        if how == "truncate":
            target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
            _rerecord(stage_folder)
        elif how == "delete":
            target.unlink()
            if target.name != "provenance.json" and target.name != "checksums.json":
                _rerecord(stage_folder)
        elif how == "create":
            target.write_bytes(b"\x80\x02}q\x00.")  # a pickle's first bytes
        elif how == "garbage":
            target.write_text("{not json")
        elif how == "append":
            target.write_text(target.read_text() + '{"prompt": "", "chosen": "x", "rejected": "y"}\n')
        elif how == "no-outputs":
            provenance = json.loads(target.read_text())
            del provenance["outputs"]
            target.write_text(json.dumps(provenance))
        out = tmp_path / "evaluate"
        status, err = run_stage(evaluate.main, evaluate_args(copy, common, models, out), capsys)
    assert status == 2
    error_line(err, *names)
    nothing_trusted(out)


# ------------------------------------------------------------------ Snakemake's --configfile and --config


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", ["(top level)", "is empty"]),
        ("- a\n- b\n", ["(top level)", "is a list"]),
        ("profile: [smoke\n", ["not valid YAML"]),
        (b"\xff\xfe", ["not UTF-8"]),
        (None, ["No such file"]),
    ],
    ids=["empty", "list", "garbage", "non-utf8", "missing"],
)
def test_the_config_preflight_names_the_file_snakemake_does_not(tmp_path, capsys, text, names):
    """Snakemake parses --configfile before the Snakefile runs and names no file for these; `make run` checks
    the file first with `python -m rlhf_bench.config`, which does (exit 1, as the DAG's own validation)."""
    from rlhf_bench import config

    path = tmp_path / "profile.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    status, err = run_stage(config.main, [path], capsys)
    assert status == 1
    error_line(err, path, *names)


def test_the_config_preflight_passes_every_shipped_profile(capsys):
    """The control of the cases above."""
    from conftest import ROOT
    from rlhf_bench import config

    profiles = [ROOT / "config" / name for name in ("config.yaml", "imdb-cpu.yaml", "paper.yaml")]
    assert run_stage(config.main, profiles, capsys) == (0, "")


@pytest.mark.parametrize(
    ("override", "names"),
    [
        (["seeds=[0,x]"], ["--config", "seeds.1", "integer"]),
        (["threads=0"], ["--config", "threads"]),
        (["experiments={imdb-negative: {ppo: {steps: -3}}}"], ["--config", "experiments.imdb-negative.ppo.steps"]),
        (["results_dir="], ["--config", "results_dir"]),
    ],
    ids=["seeds-list-item", "threads-zero", "nested-steps-negative", "results-dir-empty"],
)
def test_a_bad_config_override_stops_the_dag_in_one_line(tmp_path, override, names):
    """`snakemake --config ...` is validated before any job, and the line names --config as a source."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-n", "--configfile",
         str(ROOT / "config" / "config.yaml"), "--config", *override],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    error_line(result.stderr, *names)
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("source", ["/nowhere/imdb", "./data/imdb-copy", "~/imdb-missing"])
def test_download_does_not_read_a_missing_path_as_a_hub_id(tmp_path, capsys, source):
    """A data.source that is a path (not there) is said to be missing, not looked up on the hub."""
    from rlhf_bench.train import download

    config = tiny_config()
    config["experiments"][EXPERIMENT]["data"]["source"] = source
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "hub"
    argv = ["--config", path, "--experiment", EXPERIMENT, "--check", "--out", out]
    status, err = run_stage(download.main, argv, capsys)
    assert status == 2
    error_line(err, "data.source", source, "no such file or folder")
    nothing_trusted(out)
