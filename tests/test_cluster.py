"""The smoke DAG on a real SLURM cluster through profiles/slurm (docs/cluster.md, "Clusters").

tests/cluster/run.sh (`make cluster-test`; `make test` where it runs as root with apt) installs Debian's SLURM,
starts a one-node cluster on this machine and runs this module with RLHF_BENCH_SLURM_CLUSTER set. Without that
variable the cluster tests skip; the checks of the profile and of the plugin's sbatch arguments run everywhere.

On the cluster: the tiny smoke DAG (tests/conftest.py tiny_config, seeds 0 and 1) runs once on the host
(`--cores 2`) and once with `--profile` (a copy of profiles/slurm with its documented partition and account lines
filled in and apptainer off: the test machine has no apptainer and the tiny config names no image); every
non-local job must be one SLURM job (sacct: the plugin names each job after the run and comments it with the rule
and wildcards), its results byte-identical to the host run's, and a `resources: {ppo: {gpu: 1}}` config must give
a ppo job that holds the cluster's gpu GRES.
"""

from __future__ import annotations

import collections
import filecmp
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import ROOT, snakemake, snakemake_command, snakemake_env, tiny_config
from rlhf_bench.layout import FRONTIER_STAGES, STAGES, USER_STAGES

PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
CLUSTER = os.environ.get("RLHF_BENCH_SLURM_CLUSTER", "")
ACCOUNT = os.environ.get("RLHF_BENCH_SLURM_ACCOUNT", "rlhf-bench")
PARTITION = os.environ.get("RLHF_BENCH_SLURM_PARTITION", "cpu")
GPU_PARTITION = os.environ.get("RLHF_BENCH_SLURM_GPU_PARTITION", "gpu")
# localrules (rules/common.smk, rules/report.smk) and the target
LOCAL_RULES = {"resolved_config", "experiment_config", "aggregate", "claims", "all"}
# What must be byte-identical between the host run and the SLURM run (per seed, per experiment, per profile).
COMPARED = ("metrics.json", "samples.parquet", "rm_metrics.json", "summary.csv", "claims.csv")
GPU_EXPERIMENT = "imdb-negative"
STAGE_RULES = (*STAGES, *FRONTIER_STAGES, *USER_STAGES)  # the jobs that write a provenance.json

needs_cluster = pytest.mark.skipif(
    not CLUSTER,
    reason="no SLURM cluster: tests/cluster/run.sh (make cluster-test) starts one on this machine and runs these",
)


# --- without a cluster: the profile and the plugin's sbatch arguments --------------------------------------------


def test_slurm_profile_documents_partition_account_and_gpu_partition():
    text = PROFILE.read_text()
    profile = yaml.safe_load(text)
    assert profile["executor"] == "slurm" and profile["rerun-incomplete"] is True
    assert {"mem_mb", "runtime"} <= set(profile["default-resources"])
    for line in ("# slurm_partition: ", "# slurm_account: ", "#     slurm_partition: gpu"):
        assert line in text, f"profiles/slurm/config.yaml lost its documented line {line!r}"
    site = yaml.safe_load(site_profile_text(text, "part", "acct", apptainer=True))
    filled = {"slurm_partition": "part", "slurm_account": "acct"}
    assert site["default-resources"] == {**profile["default-resources"], **filled}
    assert site["use-apptainer"] is True


def test_the_lock_carries_the_slurm_plugin():
    lock = (ROOT / "envs" / "requirements.lock").read_text()
    for name in ("snakemake-executor-plugin-slurm==", "snakemake-executor-plugin-slurm-jobstep=="):
        assert re.search(rf"^{re.escape(name)}\S+ \\\n\s+--hash=sha256:", lock, flags=re.M), name
    assert "snakemake-executor-plugin-slurm" in (ROOT / "envs" / "requirements.in").read_text()


class _Resources(dict):
    __getattr__ = dict.get


def _sbatch(**resources) -> str:
    """The plugin's sbatch call for a job with these resources (its own functions, no cluster needed)."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="make install brings the SLURM plugin")
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    job = SimpleNamespace(resources=_Resources(resources), threads=1)
    account = f" -A {resources['slurm_account']}" if "slurm_account" in resources else ""
    partition = f" -p {resources['slurm_partition']}" if "slurm_partition" in resources else ""
    params = {"run_uuid": "run", "slurm_logfile": "x/%j.log", "comment_str": "rule_ppo", "account": account,
              "partition": partition, "workdir": "/w"}  # fmt: skip
    return get_submit_command(job, params) + set_gres_string(job)


def test_the_plugin_turns_the_rules_gpu_resource_into_gpus():
    """rules/*.smk say `gpu=N` (0 where the config says nothing): N > 0 becomes `--gpus=N`, 0 asks for none."""
    call = _sbatch(gpu=1, mem_mb=8000, runtime=480, slurm_partition="gpu", slurm_account="proj")
    assert "--gpus=1" in call and " -p gpu" in call and " -A proj" in call and "--mem 8000" in call
    assert "-t 480" in call
    call = _sbatch(gpu=0, mem_mb=8000, runtime=30)
    assert "--gpus" not in call and "--gres" not in call and "--ntasks=1" in call


def test_ppo_shards_become_a_shard_gres_and_no_whole_gpu(tmp_path):
    """`resources: {ppo: {shards: 2}}`: the ppo jobs ask for no whole GPU and for two of a GPU's shards, which the
    plugin passes to sbatch as `--gres=shard:2`; the other rules keep their gpu resource."""
    raw = tiny_config(seeds=(0, 1))
    raw["experiments"]["imdb-negative"]["resources"] = {"ppo": {"shards": 2}, "sft": {"gpu": 1}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(raw))
    target = "results/smoke/imdb-negative/ppo/seed1/train_log.csv"
    result = snakemake(tmp_path, target, "--dry-run", "--configfile", str(tmp_path / "tiny.yaml"))
    assert result.returncode == 0, result.stderr[-4000:]
    jobs = {block.split("\n")[0].strip(): block for block in result.stdout.split("rule ")[1:]}
    ppo = [block for name, block in jobs.items() if name.startswith("ppo:")]
    assert len(ppo) == 1 and "gpu=0" in ppo[0] and "gres=shard:2" in ppo[0], ppo
    assert "gpu=1" in jobs["sft:"] and "gres" not in jobs["sft:"]
    call = _sbatch(gpu=0, gres="shard:2", mem_mb=8000, runtime=480)
    assert "--gres=shard:2" in call and "--gpus" not in call


# --- on the cluster -------------------------------------------------------------------------------------------


def site_profile_text(text: str, partition: str, account: str, *, apptainer: bool) -> str:
    """profiles/slurm/config.yaml as docs/cluster.md tells a site to adapt it: the commented partition and account
    lines filled in; apptainer off where asked (the cluster test's machine has none)."""
    out = re.sub(r"^(\s*)# slurm_partition: \S+$", rf"\g<1>slurm_partition: {partition}", text, count=1, flags=re.M)
    out = re.sub(r"^(\s*)# slurm_account: \S+$", rf"\g<1>slurm_account: {account}", out, count=1, flags=re.M)
    if not apptainer:
        out = re.sub(r"^use-apptainer: true$", "use-apptainer: false", out, flags=re.M)
        out = re.sub(r"^apptainer-args: .*\n", "", out, flags=re.M)
    assert out.count(f"slurm_partition: {partition}") == 1 and f"slurm_account: {account}\n" in out, out
    return out


def ran(result: subprocess.CompletedProcess, what: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{what} failed:\n{output[-6000:]}"
    return output


def jobs_in(output: str) -> dict[str, collections.Counter]:
    """{'rule': Counter, 'localrule': Counter} of 'name[_wildcards_v1_v2]' (the plugin's comment) per job block."""
    found = {"rule": collections.Counter(), "localrule": collections.Counter()}
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", output):
        head = re.match(r"(localrule|rule) (\w+):\n", block)
        if not head:
            continue
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, flags=re.M)
        values = [pair.split("=", 1)[1] for pair in wildcards.group(1).split(", ")] if wildcards else []
        name = f"rule_{head.group(2)}" + (f"_wildcards_{'_'.join(values)}" if values else "")
        found[head.group(1)][name] += 1
    return found


def run_id(output: str) -> str:
    match = re.search(r"SLURM run ID: (\S+)", output)
    assert match, "no 'SLURM run ID' in Snakemake's output: did the slurm executor run?"
    return match.group(1)


FIELDS = ("JobID", "JobName", "Comment", "State", "Partition", "Account", "ReqTRES", "AllocTRES", "Elapsed")


def sacct(name: str) -> list[dict[str, str]]:
    """The run's SLURM jobs from the accounting database, as the plugin itself looks them up (--name <run id>)."""
    result = subprocess.run(
        ["sacct", "-X", "-n", "-P", "--clusters", CLUSTER, "--starttime", "now-1days", "--name", name,
         "-o", ",".join(f"{f}%200" for f in FIELDS)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [dict(zip(FIELDS, line.split("|"), strict=True)) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cluster():
    if not CLUSTER:
        pytest.skip("no SLURM cluster: tests/cluster/run.sh (make cluster-test) starts one and runs these")
    info = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True, timeout=30)
    assert info.returncode == 0 and "idle" in info.stdout, f"RLHF_BENCH_SLURM_CLUSTER is set but sinfo says: {info}"


@pytest.fixture(scope="module")
def setup(cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(seeds=(0, 1))))
    assert not yaml.safe_load(config.read_text()).get("container"), "the cluster test runs without an image"
    profile = root / "slurm-site"
    profile.mkdir()
    (profile / "config.yaml").write_text(site_profile_text(PROFILE.read_text(), PARTITION, ACCOUNT, apptainer=False))
    return SimpleNamespace(root=root, config=config, profile=profile)


# Status checks every few seconds, not the plugin's 40 s first wait: the tiny DAG's jobs take seconds.
FAST_POLL = ("--slurm-init-seconds-before-status-checks", "2")


@pytest.fixture(scope="module")
def local_run(setup):
    workdir = setup.root / "local"
    workdir.mkdir()
    output = ran(snakemake(workdir, "--cores", "2", "--configfile", str(setup.config)), "the host run (--cores 2)")
    return SimpleNamespace(workdir=workdir, output=output)


@pytest.fixture(scope="module")
def slurm_run(setup, local_run):  # after the host run: one heavy thing at a time on a small machine
    workdir = setup.root / "slurm"
    workdir.mkdir()
    args = ("--profile", str(setup.profile), "--configfile", str(setup.config), *FAST_POLL)
    output = ran(snakemake(workdir, *args), "the SLURM run (--profile)")
    name = run_id(output)
    return SimpleNamespace(workdir=workdir, output=output, args=args, run_id=name, jobs=sacct(name))


@needs_cluster
def test_every_non_local_job_is_one_slurm_job(slurm_run, local_run):
    host = sum(jobs_in(local_run.output).values(), collections.Counter())  # on the host every job is `localrule`
    blocks = jobs_in(slurm_run.output)
    assert sum(host.values()) > 20 and blocks["rule"] + blocks["localrule"] == host
    assert {name.split("_wildcards_")[0].removeprefix("rule_") for name in blocks["localrule"]} <= LOCAL_RULES
    comments = collections.Counter(job["Comment"] for job in slurm_run.jobs)
    assert comments == blocks["rule"], f"sacct comments {comments} != submitted jobs {blocks['rule']}"
    assert all(job["State"] == "COMPLETED" for job in slurm_run.jobs), slurm_run.jobs
    assert len({job["JobID"] for job in slurm_run.jobs}) == len(slurm_run.jobs)
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", slurm_run.output)
    assert sorted(submitted) == sorted(job["JobID"] for job in slurm_run.jobs)
    print(f"\n{len(slurm_run.jobs)} SLURM jobs (run {slurm_run.run_id}):")
    for job in sorted(slurm_run.jobs, key=lambda j: int(j["JobID"])):
        print("  " + " | ".join(job[f] for f in FIELDS))


@needs_cluster
def test_jobs_ran_in_the_profiles_partition_and_account(slurm_run):
    """The site lines of the profile reach sbatch: the partition is not the cluster's default one's only by luck
    (it is the default here, `cpu`), and the account is not root's default (`root`)."""
    assert {job["Partition"] for job in slurm_run.jobs} == {PARTITION}
    assert {job["Account"] for job in slurm_run.jobs} == {ACCOUNT}
    assert not any("gres/gpu" in job["AllocTRES"] for job in slurm_run.jobs), "no smoke job asks for a GPU"


@needs_cluster
def test_results_are_byte_identical_to_the_host_run(slurm_run, local_run):
    host = local_run.workdir / "results"
    files = sorted(p.relative_to(host) for p in host.rglob("*") if p.name in COMPARED)
    # Per experiment: evaluate's metrics + samples and dpo's samples per seed (2 seeds); rm_metrics; the samples of
    # ppo_path, best_of_n and prompts (every seed in one file). Then summary.csv and claims.csv.
    assert len(files) == 3 * (2 * 2 + 2 + 1 + 3) + 2, files
    different = [str(f) for f in files if not filecmp.cmp(host / f, slurm_run.workdir / "results" / f, shallow=False)]
    assert not different, f"the SLURM run differs from the host run in {different}"
    report = (slurm_run.workdir / "reports" / "smoke" / "report.md").read_text()
    stage_jobs = {f"rule_{rule}" for rule in STAGE_RULES}
    jobs = sum(job["Comment"].split("_wildcards_")[0] in stage_jobs for job in slurm_run.jobs)
    assert re.search(rf"Scheduler: {jobs} of {jobs} stage jobs ran under SLURM \(job ids ", report), report[:3000]


@needs_cluster
def test_a_second_slurm_run_has_nothing_to_do(setup, slurm_run):
    output = ran(snakemake(slurm_run.workdir, "-n", *slurm_run.args), "the dry rerun")
    assert "Nothing to be done" in output


@needs_cluster
def test_a_gpu_resource_becomes_the_clusters_gpu_gres(setup, slurm_run):
    """`experiments.<e>.resources.ppo.gpu: 1` (require_gpu: false, so it trains on the CPU here) gives a ppo job
    that asks for and holds the node's gpu GRES, in the partition that `--set-resources` names."""
    raw = tiny_config(seeds=(0, 1))
    raw["require_gpu"] = False
    raw["experiments"][GPU_EXPERIMENT]["resources"] = {"ppo": {"gpu": 1}}
    config = setup.root / "tiny-gpu.yaml"
    config.write_text(yaml.safe_dump(raw))
    workdir = setup.root / "gpu"
    shutil.copytree(slurm_run.workdir, workdir, symlinks=True)  # copy2: mtimes kept, so only the forced job runs
    target = f"results/smoke/{GPU_EXPERIMENT}/ppo/seed0/train_log.csv"
    args = ("--profile", str(setup.profile), "--configfile", str(config), *FAST_POLL,
            "--set-resources", f"ppo:slurm_partition={GPU_PARTITION}",
            "--rerun-triggers", "mtime", "--forcerun", target, "--", target)  # fmt: skip
    output = ran(snakemake(workdir, *args), "the GPU run")
    jobs = sacct(run_id(output))
    assert [job["Comment"] for job in jobs] == [f"rule_ppo_wildcards_{GPU_EXPERIMENT}_0"], jobs
    job = jobs[0]
    assert job["State"] == "COMPLETED" and job["Partition"] == GPU_PARTITION and job["Account"] == ACCOUNT
    assert "gres/gpu=1" in job["ReqTRES"] and "gres/gpu=1" in job["AllocTRES"], job
    shown = subprocess.run(["scontrol", "show", "job", job["JobID"]], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0 and re.search(r"TresPerJob=gres:gpu:1\b", shown.stdout), shown.stdout
    print(f"\nGPU job: {' | '.join(job[f] for f in FIELDS)}")
    print("scontrol show job: " + " ".join(re.findall(r"(TresPerJob=\S+|TRES=\S+|Partition=\S+)", shown.stdout)))


@needs_cluster
def test_after_snakemake_crashes_the_documented_recovery_finishes_the_run(setup, slurm_run, local_run):
    """docs/cluster.md step 6, word for word: Snakemake is killed (SIGKILL) while its job runs on the cluster; the
    lock stays and the job goes on. The crashed run's id from Snakemake's log, `scancel --name`, `--unlock`, the
    same command again: the run finishes, with the host run's bytes."""
    workdir = setup.root / "crash"
    shutil.copytree(slurm_run.workdir, workdir, symlinks=True)
    seed_dir = "results/smoke/hh-positive/evaluate/seed1"
    shutil.rmtree(workdir / seed_dir)
    profile = ("--profile", str(setup.profile), "--configfile", str(setup.config), *FAST_POLL)
    command = (*profile, f"{seed_dir}/metrics.json")
    with open(setup.root / "crash.log", "w") as log:
        process = subprocess.Popen(snakemake_command(workdir, *command), cwd=ROOT, env=snakemake_env(), stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        try:
            name = _wait_until_a_job_runs(process, setup.root / "crash.log")
        finally:
            process.kill()  # the crash: no cleanup, no scancel
            process.wait(timeout=60)
    assert _squeue(name), "the job should outlive the Snakemake that submitted it"
    # The documented steps: the crashed run's id, scancel, --unlock, the same command.
    crashed = subprocess.run(
        'grep -h "SLURM run ID" .snakemake/log/*.snakemake.log | tail -n 1',
        shell=True, cwd=workdir, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert run_id(crashed) == name
    subprocess.run(["scancel", "--name", name], check=True, timeout=30)
    locked = snakemake(workdir, *command)
    assert locked.returncode != 0 and "cannot be locked" in locked.stdout + locked.stderr, "why --unlock is needed"
    ran(snakemake(workdir, *profile, "--unlock"), "--unlock")
    output = ran(snakemake(workdir, *command), "the rerun after the crash")
    for _ in range(30):  # scancel is asynchronous: the job is CANCELLED once slurmd has ended it
        states = {job["State"].split()[0] for job in sacct(name)}
        if states == {"CANCELLED"}:
            break
        time.sleep(1)
    assert states == {"CANCELLED"}, sacct(name)
    assert [job["State"] for job in sacct(run_id(output))] == ["COMPLETED"]
    for file in ("metrics.json", "samples.parquet"):
        host = local_run.workdir / seed_dir / file
        assert filecmp.cmp(host, workdir / seed_dir / file, shallow=False), f"{file} differs after the recovery"


def _squeue(name: str) -> list[str]:
    result = subprocess.run(["squeue", "-h", "--name", name, "-o", "%T"], capture_output=True, text=True, timeout=30)
    return result.stdout.split()


def _wait_until_a_job_runs(process: subprocess.Popen, log: Path, limit: float = 180) -> str:
    """The run id, once one of the run's SLURM jobs is RUNNING."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert process.poll() is None, f"Snakemake ended before its job ran:\n{log.read_text()[-3000:]}"
        match = re.search(r"SLURM run ID: (\S+)", log.read_text())
        if match and "RUNNING" in _squeue(match.group(1)):
            return match.group(1)
        time.sleep(0.5)
    raise AssertionError(f"no job of the run was RUNNING within {limit} s:\n{log.read_text()[-3000:]}")


# --- a stopped job resumes: scancel, and a SLURM time limit -------------------------------------------------------

RESUMED = "imdb-negative"
PPO_TARGET = f"results/smoke/{RESUMED}/ppo/seed0/train_log.csv"
PPO_FILES = ("train_log.csv", "adapter/adapter_model.safetensors", "value_head.safetensors")
LONG = os.environ.get("RLHF_BENCH_SLURM_LONG") == "1"  # tests/cluster/run.sh without --if-possible


def _ppo_run(setup, name: str, steps: int, runtime: int | None = None) -> tuple[Path, Path, Path]:
    """One experiment's ppo seed 0 for `steps` steps, checkpointed only when a stop signal asks (so that the resume
    is the signal's doing): run on the host, then a copy of that run without its ppo folder for the cluster.
    Returns (config, host run, cluster run's folder)."""
    raw = tiny_config(seeds=(0,))
    raw["experiments"] = {RESUMED: raw["experiments"][RESUMED]}
    raw["experiments"][RESUMED]["ppo"]["steps"] = steps
    raw["experiments"][RESUMED]["checkpoint"] = {"every_steps": 10**6}
    if runtime is not None:
        raw["experiments"][RESUMED]["resources"] = {"ppo": {"runtime": runtime}}
    config = setup.root / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw))
    host = setup.root / f"{name}-host"
    host.mkdir()
    ran(snakemake(host, PPO_TARGET, "--cores", "2", "--configfile", str(config)), f"the host run ({name})")
    workdir = setup.root / f"{name}-slurm"
    shutil.copytree(host, workdir, symlinks=True)  # mtimes kept: only ppo runs on the cluster
    shutil.rmtree(workdir / "results" / "smoke" / RESUMED / "ppo")
    return config, host, workdir


def _resumed_like_the_host_run(host: Path, workdir: Path) -> int:
    ppo = Path("results") / "smoke" / RESUMED / "ppo" / "seed0"
    for name in PPO_FILES:
        assert filecmp.cmp(host / ppo / name, workdir / ppo / name, shallow=False), f"{name} differs"
    provenance = yaml.safe_load((workdir / ppo / "provenance.json").read_text())
    assert provenance["resumed_from_step"] > 0 and provenance["scheduler"]["name"] == "slurm", provenance
    assert not (workdir / ppo.parent / "seed0.checkpoint").exists()
    return provenance["resumed_from_step"]


@needs_cluster
def test_a_ppo_job_stopped_by_scancel_is_retried_and_resumes(setup):
    """`scancel --signal=TERM` (what a preemption sends first): the stage checkpoints the step it is in and exits;
    Snakemake's retry resumes from there and ends byte-identical to the host run."""
    config, host, workdir = _ppo_run(setup, "scancel", steps=1500)
    command = (PPO_TARGET, "--profile", str(setup.profile), "--configfile", str(config), *FAST_POLL, "--retries", "1")
    log_path = setup.root / "scancel.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(snakemake_command(workdir, *command), cwd=ROOT, env=snakemake_env(), stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        name = _wait_until_a_job_runs(process, log_path)
        time.sleep(15)  # start-up, then some hundred steps
        job = subprocess.run(["squeue", "-h", "--name", name, "-o", "%i"], capture_output=True, text=True).stdout
        subprocess.run(["scancel", "--signal=TERM", job.split()[0]], check=True, timeout=30)
        assert process.wait(timeout=900) == 0, log_path.read_text()[-4000:]
    states = [job["State"].split()[0] for job in sorted(sacct(name), key=lambda j: int(j["JobID"]))]
    assert len(states) == 2 and states[0] != "COMPLETED" and states[1] == "COMPLETED", states
    step = _resumed_like_the_host_run(host, workdir)
    print(f"\nscancel --signal=TERM: jobs {states}, resumed from step {step} of 1500")


@needs_cluster
@pytest.mark.skipif(not LONG, reason="make cluster-test only (~4 minutes): a job must outrun a 1-minute time limit")
def test_a_ppo_job_past_its_time_limit_is_retried_and_resumes(setup):
    """`runtime: 1` (minute) for a ppo job that needs more: SLURM ends it (TIMEOUT: SIGTERM, then SIGKILL KillWait
    seconds later), the stage checkpoints on the SIGTERM, Snakemake's retries resume it until it is done, and the
    result is byte-identical to the host run's."""
    config, host, workdir = _ppo_run(setup, "timeout", steps=4000, runtime=1)
    output = ran(
        snakemake(workdir, PPO_TARGET, "--profile", str(setup.profile), "--configfile", str(config), *FAST_POLL,
                  "--retries", "4"),
        "the time-limited run",
    )  # fmt: skip
    jobs = sorted(sacct(run_id(output)), key=lambda j: int(j["JobID"]))
    states = [job["State"].split()[0] for job in jobs]
    assert states[0] == "TIMEOUT" and states[-1] == "COMPLETED" and len(states) >= 2, jobs
    step = _resumed_like_the_host_run(host, workdir)
    print(f"\ntime limit 1 minute: jobs {states} ({[j['Elapsed'] for j in jobs]}), last resumed from step {step}")
