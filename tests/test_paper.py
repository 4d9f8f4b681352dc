"""The paper profile (config/paper.yaml): faithful to the seeds, its DAG, offline failures, and its code path.

The end-to-end test runs the paper configuration on CPU exactly as written, with only sizes and steps made
small (and the environment: a hub cache in a temporary directory, no GPU required). Every hub id@revision of
paper.yaml is served from that cache by tiny random-weight models of the documented classes (GPT2LMHeadModel,
DistilBERT, DeBERTa-v2 with a SentencePiece tokenizer like deberta-v3-base's, an SST-2-style classifier) and
tiny datasets in each hub format, so the same loaders, LoRA, gradient checkpointing, reward functions and judge
run as on a cluster.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest import ROOT, snakemake
from rlhf_bench import config as cfg
from rlhf_bench.train import data, download, evaluate, models, ppo, reward, synthetic
from test_hub_formats import snapshot, write_dahoas, write_hh, write_imdb

PAPER = ROOT / "config" / "paper.yaml"
HEX40 = re.compile(r"^[0-9a-f]{40}$")


def paper_raw() -> dict:
    return yaml.safe_load(PAPER.read_text())


# --- the configuration itself ---------------------------------------------------------------------------


def test_paper_config_is_faithful_to_the_seeds():
    paper = cfg.load(PAPER)
    assert paper.profile == "paper" and paper.comparable_to_documented and paper.hf_hub_offline
    assert len(paper.seeds) >= 5
    imdb, short, hh = (paper.experiment(n) for n in ("imdb-negative", "instruct-short", "hh-positive"))
    # seeds/000: GPT-2 / GPT-2 Large + LoRA, gradient checkpointing, fp16, adaptive KL; DistilBERT / DeBERTa-v3 RMs.
    for exp, policy, rm in ((imdb, "gpt2@", "distilbert-base-cased@"), (short, "gpt2-large@", "deberta-v3-base@")):
        assert policy in exp.policy and rm in exp.reward.init
        assert exp.ppo.lora.enabled and exp.ppo.gradient_checkpointing and exp.ppo.mixed_precision == "fp16"
        assert (exp.ppo.lora.r, exp.ppo.lora.alpha, exp.ppo.lora.target_modules) == (16, 16, ["c_attn"])  # TRL ppo.py
        assert exp.ppo.adap_kl_ctrl and exp.ppo.target == 6.0 and exp.reward.objective == "pairwise"
        g = exp.generation
        assert (g.max_new_tokens, g.top_k, g.top_p, g.temperature) == (32, 0, 1.0, 1.0)  # TRL ppo.py
        assert exp.evaluate.generation == g  # evaluation samples as PPO does
        assert (exp.ppo.batch_size, exp.ppo.learning_rate) == (128, 1.41e-5)  # TRL ppo.py
    assert imdb.data.source.startswith("stanfordnlp/imdb@") and imdb.data.prefer == "negative"
    assert imdb.data.prompt_words == [2, 7] and imdb.data.prompt_tokenizer == imdb.policy  # TRL: 2-7 GPT-2 tokens
    assert short.ppo.reward == "negative_word_count" and short.ppo.ratio_threshold == 10.0
    assert short.data.source.startswith("Dahoas/synthetic-instruct-gptj-pairwise@")
    # seeds/002 config.yaml, read literally.
    assert "distilgpt2@" in hh.policy and hh.data.source.startswith("Anthropic/hh-rlhf@")
    p, g = hh.ppo, hh.generation
    assert (g.max_new_tokens, g.temperature, g.top_p, p.batch_size, p.ppo_epochs, p.learning_rate, p.steps) == (
        50, 0.7, 0.9, 16, 4, 1.41e-5, 100,
    )  # fmt: skip
    assert hh.evaluate.generation == g  # faithful: evaluation samples as PPO does
    assert hh.reward.learning_rate == 5e-5 and hh.reward.objective == "binary"
    assert hh.evaluate.num_samples == 10 and not p.lora.enabled
    assert hh.documented == {
        "judge_score_mean_base": 0.623,
        "judge_score_mean_rlhf": 0.847,
        "judge_positive_ratio_base": 0.6,
        "judge_positive_ratio_rlhf": 0.9,
    }
    # The judge: a hub sentiment classifier, not the reward model, read by label name.
    for exp in (imdb, hh):
        assert exp.evaluate.judge == "classifier" and "sst-2" in exp.evaluate.judge_model
        assert exp.evaluate.judge_model != exp.reward.init
        assert (exp.evaluate.judge_positive_label, exp.evaluate.judge_negative_label) == ("POSITIVE", "NEGATIVE")
    # Faithful and sound disagree: faithful by default, both recorded.
    temperature = next(d for d in hh.deviations if d["setting"] == "generation.temperature")
    assert temperature == {**temperature, "documented": 0.7, "ours": 0.7, "sound": 1.0}


def test_every_hub_item_is_pinned_to_a_commit():
    paper = cfg.load(PAPER)
    refs = [r for exp in paper.raw["experiments"].values() for r in download.experiment_refs(exp)]
    assert {r.kind for r in refs} == {"model", "dataset"} and len({r.name for r in refs}) == 10
    for ref in refs:
        assert not ref.local and HEX40.match(ref.revision or ""), f"{ref.role}: {ref.ref} is not pinned"


def test_every_paper_value_names_its_source():
    """Each line that sets a value carries a comment (seed file and section, TRL file, or `ours` + why)."""
    missing = []
    in_deviations = False
    for number, line in enumerate(PAPER.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("deviations:"):
            in_deviations, deviations_indent = True, indent
            continue
        if in_deviations and indent > deviations_indent:
            continue  # a deviation is its own documentation: setting, documented, sound, why
        in_deviations = False
        key, _, value = stripped.partition(":")
        value = value.split(" #")[0].strip()
        if stripped.startswith("<<:") or not value or value.startswith("&") and " " not in value:
            continue  # merges and blocks set nothing themselves
        if "#" not in line:
            missing.append(f"line {number}: {stripped}")
    assert not missing, "values without a source comment:\n" + "\n".join(missing)


def test_sound_settings_replace_the_documented_ones():
    raw = paper_raw()
    raw["apply_sound_settings"] = True
    sound = cfg.from_dict(raw)
    hh = sound.experiment("hh-positive")
    assert (hh.generation.temperature, hh.generation.top_p, hh.evaluate.num_samples) == (1.0, 1.0, None)
    # PPO samples plainly; evaluation keeps seeds/002's sampling, under which the documented numbers were drawn.
    assert (hh.evaluate.generation.temperature, hh.evaluate.generation.top_p) == (0.7, 0.9)
    assert hh.evaluate.generation.max_new_tokens == hh.generation.max_new_tokens == 50
    assert sound.experiment("imdb-negative").ppo.mixed_precision == "bf16"
    assert sound.experiment("instruct-short").ppo.mixed_precision == "bf16"
    assert next(d for d in hh.deviations if d["setting"] == "generation.top_p")["ours"] == 1.0
    raw["experiments"]["hh-positive"]["deviations"].append(
        {"setting": "ppo.nope", "documented": 1, "sound": 2, "why": "x"}
    )
    with pytest.raises(cfg.ConfigError, match=r"deviations\[6\].setting: 'ppo.nope' names no setting"):
        cfg.from_dict(raw)


# --- the DAG --------------------------------------------------------------------------------------------


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def test_dry_run_lists_download_reward_models_seeds_evaluations_and_report(tmp_path):
    result = snakemake(
        tmp_path, "-n", "--configfile", str(PAPER), "--set-resources", "evaluate:mem_mb=1234"
    )  # a profile's set-resources, from the command line
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    counts = job_counts(out)
    seeds = len(paper_raw()["seeds"])
    assert counts["download"] == 3 and counts["reward"] == 3 and counts["data"] == 3
    assert counts["ppo"] == counts["evaluate"] == 3 * seeds and seeds >= 5
    assert counts["aggregate"] == 1 and counts["report"] == 1 and "sft" not in counts
    jobs = {rule: [block for block in out.split("rule ")[1:] if block.startswith(f"{rule}:")] for rule in counts}
    for rule in ("reward", "ppo", "evaluate"):
        assert all("gpu=1" in block for block in jobs[rule]), rule
    assert all("gpu=" not in block.split("resources:")[1].split("\n")[0] for block in jobs["data"])
    assert all("mem_mb=1234" in block for block in jobs["evaluate"])
    assert any("mem_mb=64000" in block for block in jobs["ppo"])  # gpt2-large's, from paper.yaml resources


# --- failing fast ---------------------------------------------------------------------------------------


def stage(module: str, *args: str, cwd: Path, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """A stage's CLI in `cwd` (where paper.yaml's relative hub_cache, hf-cache/, does not exist)."""
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-m", f"rlhf_bench.train.{module}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    return result, time.time() - started


def test_offline_with_an_empty_cache_a_paper_job_fails_fast_in_one_line(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    args = ["--config", str(PAPER), "--experiment", "hh-positive", "--out", str(tmp_path / "data")]
    result, seconds = stage("data", *args, cwd=tmp_path, env=env)
    assert result.returncode == 2 and seconds < 30
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert (
        "dataset 'Anthropic/hh-rlhf@09be8c5bbc57cb3887f3a9732ad6aa7ec602a1fa' is neither a local directory" in lines[0]
    )
    assert "huggingface-cli download Anthropic/hh-rlhf --repo-type dataset --revision 09be8c5b" in lines[0]
    assert "snakemake --until download" in lines[0]
    # A model stage (the reward model's encoder), with the GPU requirement lifted so the hub check is reached.
    raw = paper_raw()
    raw["require_gpu"] = False
    config = tmp_path / "paper.yaml"
    config.write_text(yaml.safe_dump(raw))
    pairs = "".join(json.dumps({"prompt": "", "chosen": "good", "rejected": "bad"}) + "\n" for _ in range(4))
    for name in ("pairs_train.jsonl", "pairs_test.jsonl"):
        (tmp_path / name).write_text(pairs)
    (tmp_path / "checksums.json").write_text("{}")
    args = [
        "--config",
        str(config),
        "--experiment",
        "instruct-short",
        "--data",
        str(tmp_path),
        "--out",
        str(tmp_path / "rm"),
    ]
    result, seconds = stage("reward", *args, cwd=tmp_path, env=env)
    assert result.returncode == 2 and seconds < 60, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("rlhf_bench.train.reward: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr  # besides the libraries' import-time warnings
    assert "'microsoft/deberta-v3-base@82d8d18a7b88346261ba15d8b1044900a452cf90' is neither" in errors[0]
    assert "--include '*.json' '*.safetensors'" in errors[0]  # the command fetches the weights too


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_gpu_job_without_a_gpu_stops_at_once(tmp_path):
    args = ["--config", str(PAPER), "--experiment", "imdb-negative", "--seed", "0", "--data", str(tmp_path)]
    result, _ = stage("ppo", *args, "--out", str(tmp_path / "ppo"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "error:" in line] == [
        "rlhf_bench.train.ppo: error: ppo imdb-negative seed 0: this config needs a GPU (require_gpu: true) but torch "
        "sees no CUDA device. Fix: run on a GPU node (the rule asks for resources gpu=1; apptainer needs --nv), or set "
        "require_gpu: false."
    ]


# --- the paper code path, end to end, on CPU --------------------------------------------------------------

SIZES = {  # the only changes to paper.yaml's experiments: sizes and steps
    "data": {"n_pairs_train": 16, "n_pairs_test": 8, "n_prompts_train": 8, "n_prompts_eval": 4, "n_corpus": 16},
    "reward": {"epochs": 1, "batch_size": 4},
    "ppo": {"steps": 2, "batch_size": 4, "mini_batch_size": 2},
    "generation": {"max_new_tokens": 8},
    "evaluate": {"batch_size": 4},
    "frontier": {"ppo_path": [0.5]},  # a quarter of 2 steps is no step
}
TINY = {"n_layer": 2, "n_head": 2}


def _hub_id(ref: str) -> tuple[str, str]:
    name, revision = download.parse(ref)
    return name, revision


def _wordpiece(folder: Path, texts: list[str], lowercase: bool):
    from tokenizers import BertWordPieceTokenizer
    from transformers import DistilBertTokenizerFast

    wordpiece = BertWordPieceTokenizer(lowercase=lowercase)
    wordpiece.train_from_iterator(texts, vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    wordpiece.save_model(str(folder))
    tokenizer = DistilBertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=lowercase)
    tokenizer.save_pretrained(folder)
    return tokenizer


def _spm(folder: Path, texts: list[str]) -> int:
    """A SentencePiece model saved as spm.model with deberta-v3-base's tokenizer_config.json."""
    import sentencepiece

    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(texts))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "spm"), vocab_size=200, hard_vocab_limit=False,
        pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]",
        unk_piece="[UNK]", user_defined_symbols=["[MASK]"], minloglevel=2,
    )  # fmt: skip
    corpus.unlink()
    (folder / "spm.vocab").unlink()
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "vocab_type": "spm"}))
    return sentencepiece.SentencePieceProcessor(model_file=str(folder / "spm.model")).get_piece_size()


def build_tiny_hub(cache: Path, paper: dict) -> None:
    """Serve every item paper.yaml names, at its pinned revision, from `cache`: tiny models and datasets."""
    from transformers import (
        DebertaV2Config,
        DebertaV2ForMaskedLM,
        DistilBertConfig,
        DistilBertForMaskedLM,
        DistilBertForSequenceClassification,
        GPT2Config,
        GPT2LMHeadModel,
    )

    torch.manual_seed(0)
    texts = [r["text"] for r in synthetic.make_reviews(200, 5)] + [
        f"Question: {r['prompt']}\nAnswer: {r['chosen']} {r['rejected']}" for r in synthetic.make_instructions(100, 5)
    ]
    texts += [d["chosen"] + d["rejected"] for d in synthetic.make_dialogues(100, 5)]
    hub = paper["_hub"]
    for key, write in (("imdb", write_imdb), ("dahoas", write_dahoas), ("hh", write_hh)):
        write(snapshot(cache, *_hub_id(hub[key]), kind="dataset"))
    gpt2_tokenizer = models.train_tokenizer(texts, 400, for_encoder=False)
    for key in ("gpt2", "gpt2_large", "distilgpt2"):
        folder = snapshot(cache, *_hub_id(hub[key]))
        config = GPT2Config(vocab_size=len(gpt2_tokenizer), n_positions=1024, n_embd=32, **TINY)
        config.bos_token_id = config.eos_token_id = gpt2_tokenizer.eos_token_id
        models.save(GPT2LMHeadModel(config), gpt2_tokenizer, folder)
    for key, lowercase in (("distilbert_cased", False), ("distilbert_uncased", True)):
        folder = snapshot(cache, *_hub_id(hub[key]))
        tokenizer = _wordpiece(folder, texts, lowercase)
        config = DistilBertConfig(vocab_size=len(tokenizer), dim=32, hidden_dim=64, n_layers=2, n_heads=2)
        DistilBertForMaskedLM(config).save_pretrained(folder, safe_serialization=True)  # a base checkpoint
    folder = snapshot(cache, *_hub_id(hub["sst2"]))
    tokenizer = _wordpiece(folder, texts, lowercase=True)
    labels = {"id2label": {0: "NEGATIVE", 1: "POSITIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1}}
    config = DistilBertConfig(vocab_size=len(tokenizer), dim=32, hidden_dim=64, n_layers=2, n_heads=2, **labels)
    DistilBertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    folder = snapshot(cache, *_hub_id(hub["deberta_v3_base"]))
    config = DebertaV2Config(  # deberta-v3-base's config.json, with tiny sizes
        vocab_size=_spm(folder, texts), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, relative_attention=True, position_buckets=256, norm_rel_ebd="layer_norm",
        share_att_key=True, pos_att_type=["p2c", "c2p"], position_biased_input=False, max_relative_positions=-1,
        layer_norm_eps=1e-7, pad_token_id=0,
    )  # fmt: skip
    DebertaV2ForMaskedLM(config).save_pretrained(folder, safe_serialization=True)


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """paper.yaml with sizes and steps made small, every stage of every experiment run once (seed 0)."""
    from accelerate.state import AcceleratorState

    root = tmp_path_factory.mktemp("paper")
    raw = paper_raw()
    build_tiny_hub(root / "hub", raw)
    raw = copy.deepcopy(raw)
    raw.update(seeds=[0], require_gpu=False, hub_cache=str(root / "hub"))
    for exp in raw["experiments"].values():
        for block, sizes in SIZES.items():
            exp[block].update(sizes)
    (root / "paper.yaml").write_text(yaml.safe_dump(raw))
    results, errors = root / "results", []
    for name, exp in cfg.load(root / "paper.yaml").experiments.items():
        out = results / name
        common = ["--config", str(root / "paper.yaml"), "--experiment", name]
        uses_rm = ["--reward", str(out / "reward")] if exp.ppo.reward == "reward_model" else []
        AcceleratorState._reset_state(True)  # one PPO trainer per process on a cluster; here three in one
        for module, args in (
            (download, ["--check", "--out", str(out / "hub")]),
            (data, ["--out", str(out / "data")]),
            (reward, ["--data", str(out / "data"), "--out", str(out / "reward")]),
            (ppo, ["--seed", "0", "--data", str(out / "data"), *uses_rm, "--out", str(out / "ppo")]),
            (evaluate, ["--seed", "0", "--data", str(out / "data"), *uses_rm, "--ppo", str(out / "ppo"),
                        "--out", str(out / "evaluate")]),
        ):  # fmt: skip
            if module.main([*common, *args]) != 0:
                errors.append(f"{name}: {module.__name__} failed")
                break
    download.use_cache(None)
    yield results, errors, root
    AcceleratorState._reset_state(True)  # leave the process as a fresh one for later tests
    os.environ.pop("ACCELERATE_MIXED_PRECISION", None)


def provenance(path: Path) -> dict:
    return json.loads((path / "provenance.json").read_text())


def test_paper_code_path_runs_end_to_end_on_cpu(paper_run, capsys):
    results, errors, _ = paper_run
    assert not errors, f"{errors}\n{capsys.readouterr().err}"
    for name in ("imdb-negative", "instruct-short", "hh-positive"):
        out = results / name
        manifest = json.loads((out / "hub" / "manifest.json").read_text())["experiments"][name]
        assert all(HEX40.match(item["commit"]) for item in manifest)
        rm = json.loads((out / "reward" / "rm_metrics.json").read_text())
        assert rm["test"]["n_pairs"] == 8 and 0.0 <= rm["test"]["accuracy"] <= 1.0
        assert (out / "reward" / "model" / "model.safetensors").exists()
        log = pd.read_csv(out / "ppo" / "train_log.csv")
        assert len(log) == 2 and log.notna().all().all()
        metrics = json.loads((out / "evaluate" / "metrics.json").read_text())
        assert set(metrics["policies"]) == {"base", "rlhf"}
        assert not list(results.rglob("*.bin")) and not list(results.rglob("*.pkl"))  # safetensors only


def test_paper_path_uses_the_documented_classes_lora_and_checkpointing(paper_run):
    results, _, _ = paper_run
    for name, classes in (
        ("imdb-negative", ("GPT2LMHeadModel", "DistilBertForSequenceClassification")),
        ("instruct-short", ("GPT2LMHeadModel", "DebertaV2ForSequenceClassification")),
        ("hh-positive", ("GPT2LMHeadModel", "DistilBertForSequenceClassification")),
    ):
        out = results / name
        rm_config = json.loads((out / "reward" / "model" / "config.json").read_text())
        assert rm_config["architectures"] == [classes[1]] and len(rm_config["id2label"]) == 1  # one logit
        trained = provenance(out / "ppo")
        precision = trained["precision"]
        assert precision["device"] == "cpu" and precision["ran_as"] == "no"  # fp16 runs in fp32 on a CPU
        assert {item["commit"] for item in trained["hub"].values()} <= {
            item["commit"] for item in json.loads((out / "hub" / "manifest.json").read_text())["experiments"][name]
        }
        if name == "hh-positive":  # seeds/002: the whole policy trains, no LoRA, no checkpointing
            assert not precision["lora"] and precision["trainable_parameters"] == precision["parameters"]
            assert (out / "ppo" / "adapter" / "model.safetensors").exists()
            assert json.loads((out / "ppo" / "adapter" / "config.json").read_text())["architectures"] == [classes[0]]
        else:
            assert precision["lora"] and precision["gradient_checkpointing"]
            assert 0 < precision["trainable_parameters"] < precision["parameters"] / 2
            assert (out / "ppo" / "adapter" / "adapter_model.safetensors").exists()
            assert provenance(out / "reward")["precision"]["gradient_checkpointing"]
        guards = trained["guards"]
        assert guards["minibatches"] == 2 * 4 * 2 and 0 <= guards["skipped_minibatches"] <= guards["minibatches"]


def test_paper_path_rewards_and_judge(paper_run):
    results, _, root = paper_run
    tokenizer = models.load_tokenizer(str(snapshot(root / "hub", *_hub_id(paper_raw()["_hub"]["gpt2"]))))
    prompts = [r["prompt"] for r in data.load_records(results / "imdb-negative" / "data" / "prompts_train.jsonl")]
    assert all(1 <= len(tokenizer.encode(p)) <= 7 for p in prompts)  # TRL: 2-7 tokens of the policy's tokenizer
    short = pd.read_parquet(results / "instruct-short" / "evaluate" / "samples.parquet")
    assert (short.reward == -short.word_count).all()  # seeds/000 part 2: minus the word count
    assert (short.judge_label == "").all()
    hh = pd.read_parquet(results / "hh-positive" / "evaluate" / "samples.parquet")
    assert hh.reward.between(0, 1).all()  # the binary classifier's probability
    assert len(hh) == 2 * 4  # num_samples 10, capped by the 4 held-out prompts here
    for name in ("imdb-negative", "hh-positive"):
        samples = pd.read_parquet(results / name / "evaluate" / "samples.parquet")
        assert samples.judge_score.between(0, 1).all()
        assert set(samples.judge_label) <= {"positive", "negative"}  # a two-label classifier, read by name
        assert ((samples.judge_score > 0.5) == (samples.judge_label == "positive")).all()
