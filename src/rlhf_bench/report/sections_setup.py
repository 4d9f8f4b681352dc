"""The report's setup and provenance sections: what ran, on what, how long, and where it departs from the docs."""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from rlhf_bench.analysis.metrics import fmt
from rlhf_bench.io import flatten
from rlhf_bench.layout import RULE_ORDER, stage_dir
from rlhf_bench.report.inputs import Inputs, stage_config
from rlhf_bench.report.markup import NONE, REWARD_UNITS, code, section, table, text

# Config blocks shown as hyperparameter tables, one column per experiment.
HYPERPARAMETER_BLOCKS = ("ppo", "generation", "reward")


def not_comparable_reason(config: dict, default: str) -> str:
    """The profile's own comparability_note (config), else `default`."""
    return config.get("comparability_note") or default


def compact(value) -> str:
    """A config value for a table cell: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def section_setup(inp: Inputs) -> list[str]:
    lines = section(
        "Setup",
        f"PPO seeds: {', '.join(str(s) for s in inp.seeds)}. Data, reward model and evaluation prompts are "
        "shared by the seeds of an experiment; each seed trains its own policy.",
    )
    rows = []
    for experiment, exp in inp.config["experiments"].items():
        docs = exp.get("documented") or {}
        n_prompts = inp.samples_of(experiment).groupby("seed").prompt_id.nunique()
        rows.append(
            [
                code(experiment),
                text(exp.get("description", "")),
                text(exp.get("source", "")),
                f"{code(exp['objective']['metric'])} ({exp['objective']['direction']})",
                ", ".join(str(n) for n in sorted(set(n_prompts))),
                ", ".join(f"{code(k)} {fmt(v)}" for k, v in docs.items()) or "none",
            ]
        )
    lines += table(
        ["experiment", "description", "source", "PPO objective", "eval prompts per seed", "documented"], rows
    )
    lines += ["Models, data and judge:", ""]
    lines += table(["experiment", "policy", "reward model", "PPO reward", "data", "judge"], model_rows(inp))
    lines += section_hardware(inp) + section_stage_times(inp) + section_deviations(inp)
    for block in HYPERPARAMETER_BLOCKS:
        params = {e: flatten(inp.block(e, block)) for e in inp.experiments}
        keys = list(dict.fromkeys(k for p in params.values() for k in p))
        if not keys:
            continue
        lines += [f"Hyperparameters: {code(block)} (from the resolved config).", ""]
        lines += table(
            ["parameter"] + [code(e) for e in params],
            [[code(k)] + [text(compact(p[k]) if k in p else NONE) for p in params.values()] for k in keys],
        )
    return lines


def model_rows(inp: Inputs) -> list[list[str]]:
    rows = []
    for experiment, exp in inp.config["experiments"].items():
        sft, rm, data = (stage_config(exp, block) for block in ("sft", "reward", "data"))
        if exp.get("policy") == "sft" and sft.get("init", "scratch") == "scratch":
            policy = (
                f"GPT-2 from scratch ({sft.get('n_layer')} layers, width {sft.get('n_embd')}, "
                f"BPE vocabulary {sft.get('vocab_size')}), trained on the corpus"
            )
        elif exp.get("policy") == "sft":
            policy = f"{sft.get('init')} fine-tuned on the corpus"
        else:
            policy = str(exp.get("policy"))
        if rm.get("init", "scratch") == "scratch":
            reward_model = (
                f"{rm.get('architecture')} from scratch ({rm.get('n_layer')} layers, width {rm.get('hidden_size')})"
            )
        else:
            reward_model = str(rm.get("init"))
        pairs = f"{data.get('n_pairs_train')} / {data.get('n_pairs_test')} pairs (train / test)"
        pairs += pair_checks_text(inp, experiment)
        rows.append(
            [
                code(experiment),
                text(policy + " + LoRA"),
                text(reward_model),
                text(REWARD_UNITS.get(inp.ppo_reward(experiment), "")),
                text(f"{data.get('format')} format from {data.get('source', '')}; {pairs}"),
                text(judge_name(stage_config(exp, "evaluate"))),
            ]
        )
    return rows


def pair_checks_text(inp: Inputs, experiment: str) -> str:
    """What the data stage found in the pairs it built (provenance `pair_checks`): '' for a run without them."""
    label = stage_dir(".", experiment, "data").removeprefix("./")
    checks = dict(inp.provenance).get(label, {}).get("pair_checks")
    if not checks:
        return ""
    total = {key: sum(int(c.get(key, 0)) for c in checks.values()) for key in ("identical", "dropped", "written")}
    context = sum(int(c.get("context_differs", 0)) for c in checks.values())
    empty = sum(int(c.get("empty_reply", 0)) for c in checks.values())
    identical = f"{total['identical']} identical"
    if total["identical"]:
        identical += f" ({total['dropped']} dropped)" if total["dropped"] else " (kept)"
    return (
        f"; pair checks: {identical}, {context} with a context that differs before the last reply, "
        f"{empty} with an empty final reply; {total['written']} pairs written"
    )


def judge_name(evaluate: dict) -> str:
    judge = evaluate.get("judge", "none")
    if judge == "classifier":
        return f"classifier {evaluate.get('judge_model', '')}"
    return "VADER lexicon (vaderSentiment)" if judge == "vader" else judge


def hardware_of(record: dict) -> str:
    return json.dumps(record.get("hardware"), sort_keys=True)


def section_hardware(inp: Inputs) -> list[str]:
    lines = []
    for hardware in grouped(inp.provenance, hardware_of):
        h = json.loads(hardware) or {}
        accelerator = h.get("cuda") or "no GPU"
        image = f", container {h['container_image']}" if h.get("container_image") else ""
        lines.append(
            f"Hardware: {text(h.get('cpu'))}, {h.get('cpu_count')} cores, {h.get('torch_threads')} torch thread(s) "
            f"per job, {text(accelerator)}, Python {h.get('python')}{text(image)}."
        )
    return lines + scheduler_lines(inp) + [""]


def scheduler_lines(inp: Inputs) -> list[str]:
    """Where the stages ran as batch jobs (provenance `scheduler`): SLURM's job ids, partitions and nodes."""
    jobs = [record["scheduler"] for _, record in inp.provenance if record.get("scheduler")]
    if not jobs:
        return ["Scheduler: none (every stage ran as a process on the host)."]
    partitions = sorted({str(j.get("partition")) for j in jobs})
    nodes = sorted({str(j.get("node")) for j in jobs})
    restarted = sum(1 for j in jobs if str(j.get("restart_count") or "0") != "0")
    return [
        f"Scheduler: {len(jobs)} of {len(inp.provenance)} stage jobs ran under SLURM (job ids "
        f"{text(', '.join(sorted({str(j.get('job_id')) for j in jobs}, key=lambda x: (len(x), x))))}; partition(s) "
        f"{text(', '.join(partitions))}; node(s) {text(', '.join(nodes))}; {restarted} requeued)."
    ]


def section_stage_times(inp: Inputs) -> list[str]:
    """Wall time and peak memory per rule, from Snakemake's benchmark files (absent: a run outside Snakemake)."""
    if inp.benchmarks.empty:
        return [f"No Snakemake benchmark files under {text(inp.benchmarks_dir)}.", ""]
    frame = inp.benchmarks.assign(rule=inp.benchmarks.file.map(benchmark_rule))
    per_rule = frame.groupby("rule", sort=False).agg(
        jobs=("file", "count"), total=("seconds", "sum"), longest=("seconds", "max"), rss=("max_rss_mb", "max")
    )
    lines = ["Wall time per stage (Snakemake benchmark files; peak resident memory of any job of the rule):", ""]
    return lines + table(
        ["rule", "jobs", "total (s)", "longest job (s)", "peak memory (MB)"],
        [
            [code(rule), str(int(r.jobs)), fmt(r.total), fmt(r.longest), fmt(r.rss)]
            for rule, r in per_rule.sort_index(key=lambda rules: rules.map(pipeline_position)).iterrows()
        ],
    )


def pipeline_position(rule: str) -> int:
    return RULE_ORDER.index(rule) if rule in RULE_ORDER else len(RULE_ORDER)


def benchmark_rule(file: str) -> str:
    """'imdb-negative.ppo.seed0.tsv' -> 'ppo'; 'aggregate.tsv' -> 'aggregate'."""
    parts = file.removesuffix(".tsv").split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def section_deviations(inp: Inputs) -> list[str]:
    """Every place this run differs from the documented setting: declared in the config, plus drift."""
    rows = []
    declared = [(name, d) for name, exp in inp.config["experiments"].items() for d in exp.get("deviations") or []]
    applied = bool(inp.config.get("apply_sound_settings"))
    for experiment, d in declared:
        sound = NONE
        if "sound" in d:  # faithful by default; apply_sound_settings: true runs the sound value instead
            sound = text(d["sound"]) + (" (applied)" if applied and d.get("ours") == d["sound"] else " (not applied)")
        fields = (d.get(key, "") for key in ("setting", "documented", "ours"))
        rows.append([code(experiment), *(text(f) for f in fields), sound, text(d.get("why", ""))])
    if not inp.config.get("comparable_to_documented", False):
        reason = not_comparable_reason(inp.config, "see the config")
        rows.append(["all", "models and data", "the documented models and datasets", text(reason), NONE, "profile"])
    drift = sorted({str(e) for _, r in inp.provenance for e in r.get("version_drift") or []})
    rows += [["all", "library version", "pinned", f"**{text(d)}**", NONE, "--allow-version-drift"] for d in drift]
    lines = [
        "Deviations from the documented setting (`sound`: the setting we would choose where the faithful one is "
        f"known to mislead; `apply_sound_settings: {str(applied).lower()}` in this run):",
        "",
    ]
    if not rows:
        return lines + ["None declared.", ""]
    return lines + table(["experiment", "setting", "documented", "ours", "sound", "why"], rows)


# -------------------------------------------------------------------------------------------- provenance


def where(labels: list[str], all_labels: list[str]) -> str:
    return "all stages" if sorted(labels) == sorted(all_labels) else ", ".join(text(label) for label in labels)


def grouped(records: list[tuple[str, dict]], key) -> dict[str, list[str]]:
    """Value -> stage labels that recorded it, so that identical records appear once."""
    groups: dict[str, list[str]] = {}
    for label, record in records:
        groups.setdefault(key(record), []).append(label)
    return groups


def recorded_values(records: list[tuple[str, dict]], entries) -> dict:
    """Each value `entries(record)` yields -> the stage labels that recorded it."""
    seen: dict = {}
    for label, record in records:
        for value in entries(record):
            seen.setdefault(value, []).append(label)
    return seen


def section_provenance(inp: Inputs) -> list[str]:
    records = inp.provenance
    labels = [label for label, _ in records]
    lines = section("Provenance", "Deduplicated from the provenance.json of every stage.")

    versions = recorded_values(
        records,
        lambda r: ((lib, "not installed" if v is None else str(v)) for lib, v in (r.get("versions") or {}).items()),
    )
    lines += ["Library versions imported by the stages:", ""]
    lines += table(
        ["library", "version", "recorded by"],
        [[code(lib), text(v), where(stages, labels)] for (lib, v), stages in sorted(versions.items())],
    )

    drift = recorded_values(records, lambda r: (str(entry) for entry in r.get("version_drift") or []))
    if drift:
        lines += ["Version drift (stages ran against versions other than the pinned ones):", ""]
        lines += [f"- **{text(d)}** ({where(stages, labels)})" for d, stages in drift.items()] + [""]
    else:
        lines += ["No stage recorded version drift.", ""]

    commits = grouped(records, lambda r: str(r.get("git_commit")))
    mark = "**" if len(commits) > 1 else ""
    lines += [
        f"- {mark}Git commit{' differs between stages' if len(commits) > 1 else ''}{mark}: "
        + "; ".join(f"`{v}` ({where(stages, labels)})" for v, stages in commits.items())
    ]
    # Each experiment's stages read that experiment's slice of the config: one hash per experiment.
    for experiment in sorted({str(r.get("experiment")) for _, r in records}):
        mine = [(label, r) for label, r in records if str(r.get("experiment")) == experiment]
        values = grouped(mine, lambda r: str(r.get("config_sha256")))
        mark = "**" if len(values) > 1 else ""
        lines += [
            f"- {mark}Config sha256 of `{experiment}`{' differs between its stages' if len(values) > 1 else ''}"
            f"{mark}: "
            + "; ".join(f"`{v}` ({where(stages, [label for label, _ in mine])})" for v, stages in values.items())
        ]
    config_sha = hashlib.sha256(inp.config_path.read_bytes()).hexdigest()
    lines += [f"- sha256 of the config file this report read ({text(inp.config_path)}): `{config_sha}`", ""]

    hardware = grouped(records, hardware_of)
    hw_keys = list(dict.fromkeys(k for h in hardware for k in json.loads(h) or {}))
    lines += ["Hardware:", ""]
    lines += table(
        hw_keys + ["recorded by"],
        [
            [text(value_or_none((json.loads(h) or {}).get(k))) for k in hw_keys] + [where(stages, labels)]
            for h, stages in hardware.items()
        ],
    )

    lines += ["Data checksums (data/checksums.json, and the checksums each stage recorded for what it read):", ""]
    lines += table(["experiment", "file", "sha256", "recorded by"], checksum_rows(inp))
    lines += ["Command line of each stage (as recorded in its provenance.json):", ""]
    lines += table(
        ["stage directory", "seconds", "command"],
        [[text(label), fmt(rec.get("seconds")), code(str(rec.get("command", "")))] for label, rec in inp.provenance],
    )
    return lines


def value_or_none(value) -> str:
    return NONE if value is None else str(value)


def checksum_rows(inp: Inputs) -> list[list[str]]:
    """One row per (experiment, file, sha256) from checksums.json and the stages' records of what they read.

    A file recorded with two different hashes is shown in bold: some stage read other data than prepared.
    """
    seen: dict[tuple[str, str, str], list[str]] = {}
    for experiment, sums in inp.checksums.items():
        for name, sha in sums.items():
            seen.setdefault((experiment, name, str(sha)), []).append("data/checksums.json")
    stages_of: dict[str, list[str]] = {}
    for label, record in inp.provenance:
        experiment = label.split("/")[0]
        stages_of.setdefault(experiment, []).append(label)
        for name, sha in (record.get("data_checksums") or {}).items():
            seen.setdefault((experiment, name, str(sha)), []).append(label)
    per_file = pd.Series([(e, f) for e, f, _ in seen]).value_counts()
    rows = []
    for (experiment, name, sha), recorders in seen.items():
        bold = "**" if per_file[(experiment, name)] > 1 else ""
        mine = stages_of.get(experiment, [])
        stages = [r for r in recorders if r in mine]
        others = [r for r in recorders if r not in mine]
        if stages and sorted(stages) == sorted(mine):
            stages = [f"all {len(stages)} stages of the experiment"]
        rows.append([code(experiment), text(name), f"{bold}`{sha}`{bold}", ", ".join(text(r) for r in others + stages)])
    return rows
