"""The pieces of the training path on known inputs: ranking loss, accuracy, word-count reward, metrics."""

from __future__ import annotations

import math

import pytest
import torch

from rlhf_bench.analysis import metrics
from rlhf_bench.io import StageError
from rlhf_bench.train import evaluate, models, reward


def test_pairwise_loss_matches_the_formula():
    chosen = torch.tensor([2.0, 0.0, -1.0])
    rejected = torch.tensor([0.0, 0.0, 1.0])
    expected = -(math.log(1 / (1 + math.exp(-2))) + math.log(0.5) + math.log(1 / (1 + math.exp(2)))) / 3
    assert reward.pairwise_loss(chosen, rejected).item() == pytest.approx(expected, rel=1e-6)


def test_pairwise_loss_is_finite_for_huge_margins_and_has_the_right_gradient_sign():
    chosen = torch.tensor([1000.0, -1000.0], requires_grad=True)
    rejected = torch.tensor([-1000.0, 1000.0])
    loss = reward.pairwise_loss(chosen, rejected)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(1000.0, rel=1e-3)  # (0 + 2000) / 2
    loss.backward()
    assert chosen.grad[1] < 0  # raising the wrongly ranked chosen score lowers the loss


def test_pairwise_accuracy_counts_ties_as_wrong():
    assert reward.pairwise_accuracy([3.0, 1.0, 2.0, 5.0], [1.0, 2.0, 2.0, 4.0]) == (2, 4)


def test_word_count_reward():
    assert reward.negative_word_count(["one two  three", "", "  single\n"]) == [-3.0, -0.0, -1.0]
    assert metrics.word_count("Paris is the capital.\nYes.") == 5


def test_distinct_2():
    assert metrics.distinct_2(["a b a b", "a b"]) == pytest.approx(2 / 4)
    assert math.isnan(metrics.distinct_2(["one", ""]))


def test_cut_at_eos_keeps_the_first_eos_only():
    ids = torch.tensor([5, 6, 0, 7, 0])
    assert evaluate.cut_at_eos(ids, 0).tolist() == [5, 6, 0]
    assert evaluate.cut_at_eos(torch.tensor([5, 6]), 0).tolist() == [5, 6]


def test_check_finite_names_the_step():
    models.check_finite({"loss": 1.0}, "ok")
    with pytest.raises(StageError, match="ppo step 7: non-finite values"):
        models.check_finite({"loss": float("nan"), "kl": 0.1}, "ppo step 7")


def test_prompt_token_limit_leaves_room_for_the_response():
    from transformers import GPT2Config

    assert models.prompt_token_limit(GPT2Config(n_positions=96), 20) == 76
    with pytest.raises(StageError, match="does not fit the policy's context of 16 tokens"):
        models.prompt_token_limit(GPT2Config(n_positions=16), 16)
