"""The frontier's arms: best-of-n's selection and KL, DPO's loss, the matched-KL table, and the arm stages run on
the tiny chain (data, sft, reward, ppo) into frontier.csv."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from conftest import SEED, evaluate_args
from rlhf_bench.analysis import frontier
from rlhf_bench.analysis.metrics import analytic_kl
from rlhf_bench.train import evaluate
from rlhf_bench.train.best_of_n import best_indices, empirical_kl


def test_best_of_n_picks_the_argmax_of_its_first_n_draws_and_the_first_of_equal_ones():
    rewards = np.array([[0.1, 0.9, 0.3, 2.0], [1.0, 1.0, 0.5, 1.0], [-3.0, -1.0, -2.0, -1.0]])
    assert best_indices(rewards, 1).tolist() == [0, 0, 0]
    assert best_indices(rewards, 2).tolist() == [1, 0, 1]
    assert best_indices(rewards, 3).tolist() == [1, 0, 1]
    assert best_indices(rewards, 4).tolist() == [3, 0, 1]


def test_analytic_kl_is_the_closed_form():
    assert analytic_kl(1) == 0.0
    assert analytic_kl(2) == pytest.approx(math.log(2) - 0.5)
    assert analytic_kl(64) == pytest.approx(math.log(64) - 63 / 64)


def test_empirical_kl_of_distinct_rewards_converges_to_the_closed_form():
    rewards = np.random.default_rng(0).normal(size=50_000)  # continuous: no ties
    for n in (2, 4, 16):
        assert empirical_kl(rewards, n) == pytest.approx(analytic_kl(n), abs=2e-3)
    assert empirical_kl(rewards[:8], 8) < analytic_kl(8)  # few draws: below the closed form


def exact_best_of_n(probabilities: np.ndarray, rewards: np.ndarray, n: int) -> np.ndarray:
    """Best-of-n's distribution over outcomes with tied rewards, each level shared in proportion to the base."""
    out = np.zeros_like(probabilities)
    for level in np.unique(rewards):
        at, below = rewards == level, rewards < level
        upper, lower = probabilities[at | below].sum(), probabilities[below].sum()
        out[at] = (upper**n - lower**n) * probabilities[at] / probabilities[at].sum()
    return out


def test_monte_carlo_kl_on_a_reward_that_counts_one_token_converges_to_the_exact_kl():
    # Toy policy: 3 tokens from {0, 1, 2} with unequal probabilities; the reward counts token 1 (heavily tied).
    token_p = np.array([0.5, 0.3, 0.2])
    outcomes = np.array([(a, b, c) for a in range(3) for b in range(3) for c in range(3)])
    probabilities = token_p[outcomes].prod(axis=1)
    rewards = (outcomes == 1).sum(axis=1).astype(float)
    rng = np.random.default_rng(1)
    draws = rng.choice(len(outcomes), size=400_000, p=probabilities)
    for n in (2, 4, 8):
        chosen = exact_best_of_n(probabilities, rewards, n)
        exact = float(np.sum(chosen * np.log(chosen / probabilities)))
        assert empirical_kl(rewards[draws], n) == pytest.approx(exact, abs=5e-3)
        assert exact < analytic_kl(n)  # ties: the closed form is an upper bound
        # Selecting the best of n draws for real gives the same distribution (first of equal rewards).
        groups = draws[: 40_000 * n].reshape(-1, n)
        picked = groups[np.arange(len(groups)), best_indices(rewards[groups], n)]
        frequency = np.bincount(picked, minlength=len(outcomes)) / len(picked)
        assert np.abs(frequency - chosen).max() < 0.01


def constructed_points() -> pd.DataFrame:
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        rows.append(("base", 0, 0.0, 0.5 + shift, seed))
        rows += [("ppo", 10, 1.0, 0.6 + shift, seed), ("ppo", 20, 2.0, 0.7 + shift, seed)]
        rows += [("best_of_n", 2, 0.5, 0.55 + shift, seed), ("best_of_n", 8, 3.0, 0.9 + shift, seed)]
    frame = pd.DataFrame(rows, columns=["arm", "value", "kl", "objective", "seed"])
    return frame.assign(experiment="toy", objective_metric="judge_negative_ratio")


def test_matched_kl_interpolates_each_seed_curve_at_the_largest_kl_every_curve_reaches():
    config = {"experiments": {"toy": {"objective": {"direction": "increase"}}}}
    table = frontier.matched(config, constructed_points()).set_index("arm")
    assert (table["matched_kl"] == 2.0).all()  # ppo's curves end at 2, best-of-n's at 3
    assert table.loc["ppo", "objective"] == pytest.approx(0.71)  # mean of 0.70 and 0.72
    # best-of-n between (0.5, 0.55) and (3.0, 0.90): 0.55 + 1.5 / 2.5 * 0.35 = 0.76 (+0.02 for seed 1)
    assert table.loc["best_of_n", "objective"] == pytest.approx(0.77)
    assert (table["best_arm"] == "best_of_n").all()
    assert math.isnan(table.loc["best_of_n", "p_vs_best"]) and table.loc["ppo", "p_vs_best"] < 0.05
    assert table.loc["ppo", "ci_low"] <= 0.71 <= table.loc["ppo", "ci_high"]
    decreasing = {"experiments": {"toy": {"objective": {"direction": "decrease"}}}}
    assert (frontier.matched(decreasing, constructed_points())["best_arm"] == "ppo").all()


def test_matched_kl_is_zero_and_no_arm_is_best_where_an_arm_never_leaves_the_base():
    points = constructed_points()
    points.loc[points.arm == "ppo", "kl"] = 0.0
    config = {"experiments": {"toy": {"objective": {"direction": "increase"}}}}
    table = frontier.matched(config, points)
    assert (table["matched_kl"] == 0).all() and (table["best_arm"] == "").all()
    assert table["p_vs_best"].isna().all()


@pytest.mark.slow
def test_dpo_loss_on_a_fixed_batch_is_the_hand_computed_sigmoid_loss(chain, tmp_path):
    from rlhf_bench.config import load
    from rlhf_bench.train import dpo
    from rlhf_bench.train.evaluate import response_logprobs

    root, common, _ = chain
    experiment = load(common[1]).experiment("imdb-negative")
    pairs = [
        {"prompt": "The film was", "chosen": " dull and far too long.", "rejected": " a delight from start"},
        {"prompt": "I watched it", "chosen": " and hated it", "rejected": " twice, happily."},
    ]
    beta = 0.3
    trainer = dpo.build_trainer(experiment, str(root / "sft" / "model"), pairs, beta, SEED, str(tmp_path))
    torch.manual_seed(0)
    with torch.no_grad():  # LoRA starts as the identity (B = 0): move it, so that policy and reference differ
        for name, parameter in trainer.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(pairs))])
    loss, _ = trainer.get_batch_metrics(trainer.model, batch)

    tokenizer, model = trainer.tokenizer, trainer.model
    model.eval()

    def logps(side: str) -> torch.Tensor:
        queries = [torch.tensor(tokenizer(p["prompt"]).input_ids) for p in pairs]
        answers = [torch.tensor(tokenizer(p[side]).input_ids + [tokenizer.eos_token_id]) for p in pairs]
        policy = response_logprobs(model, queries, answers, tokenizer.eos_token_id, 8)
        with model.disable_adapter():
            reference = response_logprobs(model, queries, answers, tokenizer.eos_token_id, 8)
        return torch.tensor(policy) - torch.tensor(reference)

    by_hand = -F.logsigmoid(beta * (logps("chosen") - logps("rejected"))).mean()
    assert float(by_hand) != pytest.approx(math.log(2), abs=1e-3)  # the batch says something
    assert float(loss) == pytest.approx(float(by_hand), abs=1e-5)


@pytest.mark.slow
def test_arm_stages_on_the_chain_write_points_that_the_frontier_table_reads(chain, tmp_path):
    from rlhf_bench.config import load
    from rlhf_bench.train import best_of_n, dpo, dpo_pairs, evaluate, ppo_path

    root, common, models = chain
    seeded = [*common, "--seed", str(SEED), "--data", str(root / "data"), *models]
    assert evaluate.main([*seeded, "--ppo", str(root / "ppo"), "--out", str(root / "evaluate")]) == 0
    # The stages of every seed in one job read the chain's one seed as the ppo stage's seed<k>/ of a 1-seed config.
    one_seed = tmp_path / "one-seed.yaml"
    one_seed.write_text(yaml.safe_dump({**yaml.safe_load(Path(common[1]).read_text()), "seeds": [SEED]}))
    (tmp_path / "ppo").mkdir()
    (tmp_path / "ppo" / f"seed{SEED}").symlink_to(root / "ppo")
    every_seed = ["--config", str(one_seed), *common[2:], "--data", str(root / "data"), *models]
    assert ppo_path.main([*every_seed, "--ppo-seeds", str(tmp_path / "ppo"), "--out", str(root / "ppo_path")]) == 0
    assert best_of_n.main([*every_seed, "--out", str(root / "best_of_n")]) == 0
    assert dpo_pairs.main([*common, "--data", str(root / "data"), *models, "--out", str(root / "dpo_pairs")]) == 0
    assert dpo.main([*seeded, "--dpo-pairs", str(root / "dpo_pairs"), "--out", str(root / "dpo")]) == 0

    experiment = load(common[1]).experiment("imdb-negative")
    steps = pd.read_parquet(root / "ppo_path" / "samples.parquet")
    assert steps.groupby(["arm", "setting", "value"]).size().to_dict() == {("ppo", "step", 1.0): 8}
    assert set(steps["seed"]) == {SEED}
    bon = pd.read_parquet(root / "best_of_n" / "samples.parquet")
    assert sorted(bon["value"].unique()) == [1.0, 2.0] and set(bon["seed"]) == {SEED}
    assert (bon[bon.value == 1]["kl"] == 0).all()  # best-of-1 is the base policy
    assert (bon[bon.value == 2]["kl"] >= 0).all()
    pairs = pd.read_json(root / "dpo_pairs" / "pairs.jsonl", lines=True)
    assert (pairs["reward_chosen"] > pairs["reward_rejected"]).all()
    assert len(pairs) > 0
    dpo_samples = pd.read_parquet(root / "dpo" / "samples.parquet")
    assert dpo_samples["value"].unique().tolist() == experiment.frontier.dpo.beta
    assert (root / "dpo" / "beta-0.1" / "adapter" / "adapter_model.safetensors").is_file()
    log = pd.read_csv(root / "dpo" / "train_log.csv")
    assert log["step"].tolist() == [1, 2] and log["loss"].notna().all()

    # The frontier's points from these samples, as the frontier stage makes them per seed.
    row = frontier.point_row(bon[bon.value == 2], "imdb-negative", "judge_negative_ratio", "best_of_n", "n", 2, SEED)
    assert row["kl"] == analytic_kl(2) and row["kl_method"] == "analytic"
    assert row["kl_monte_carlo"] == pytest.approx(bon[bon.value == 2]["kl"].mean())
    dpo_row = frontier.point_row(dpo_samples, "imdb-negative", "judge_negative_ratio", "dpo", "beta", 0.1, SEED)
    assert dpo_row["kl_method"] == "monte_carlo" and dpo_row["kl_low"] <= dpo_row["kl"] <= dpo_row["kl_high"]


def test_the_base_policy_is_scored_once_for_its_own_answers(chain, tmp_path, monkeypatch):
    """evaluate scores each answer under its policy and under the base; for the base's own answers those are one
    pass, not two (three scoring passes per job instead of four), and its KL is exactly 0."""
    root, common, models = chain
    scored = []
    original = evaluate.Evaluator.logprobs

    def counted(self, policy, queries, responses):
        scored.append("base" if policy is self.base else "other")
        return original(self, policy, queries, responses)

    monkeypatch.setattr(evaluate.Evaluator, "logprobs", counted)
    assert evaluate.main(evaluate_args(root, common, models, tmp_path / "evaluate")) == 0
    assert scored == ["base", "base", "other"]
    samples = pd.read_parquet(tmp_path / "evaluate" / "samples.parquet")
    assert (samples[samples.policy == "base"].kl == 0.0).all() and (samples[samples.policy == "rlhf"].kl != 0.0).any()
    assert json.loads((tmp_path / "evaluate" / "metrics.json").read_text())["policies"]["base"]
