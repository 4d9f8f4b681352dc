"""Each model type saves and loads offline, as safetensors, through the real from_pretrained path."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from rlhf_bench.io import StageError
from rlhf_bench.settings import RewardModelSettings, SFTSettings
from rlhf_bench.train import models

TEXTS = [
    f"the film was {w} and the cast was {v} ." for w in ("great", "awful", "dull", "superb") for v in ("fine", "bad")
] * 20


def sft_settings(**overrides):
    base = dict(
        enabled=True,
        init="scratch",
        vocab_size=300,
        n_layer=1,
        n_head=2,
        n_embd=16,
        max_length=32,
        epochs=1,
        batch_size=4,
        learning_rate=1e-3,
        seed=0,
    )
    return SFTSettings(**{**base, **overrides})


def rm_settings(architecture):
    return RewardModelSettings(
        init="scratch",
        architecture=architecture,
        vocab_size=300,
        n_layer=1,
        n_head=2,
        hidden_size=16,
        max_length=32,
        truncation_side="left",
        epochs=1,
        batch_size=4,
        learning_rate=1e-3,
        seed=0,
    )


def test_policy_round_trip(tmp_path):
    tokenizer = models.train_tokenizer(TEXTS, 300, for_encoder=False)
    model = models.scratch_policy(sft_settings(), tokenizer).eval()
    models.save(model, tokenizer, tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not (tmp_path / "pytorch_model.bin").exists()
    loaded = models.load_causal_lm(str(tmp_path)).eval()
    tok2 = models.load_tokenizer(str(tmp_path))
    enc = tok2(["the film was great"], return_tensors="pt")
    assert "token_type_ids" not in enc  # GPT-2 would add the embedding of token 0 to every position
    with torch.no_grad():
        assert torch.equal(model(**enc).logits, loaded(**enc).logits)


@pytest.mark.parametrize(
    "architecture, cls",
    [("distilbert", "DistilBertForSequenceClassification"), ("deberta-v2", "DebertaV2ForSequenceClassification")],
)
def test_reward_model_round_trip(tmp_path, architecture, cls):
    tokenizer = models.train_tokenizer(TEXTS, 300, for_encoder=True)
    model = models.scratch_reward_model(rm_settings(architecture), tokenizer).eval()
    assert type(model).__name__ == cls and model.config.num_labels == 1
    models.save(model, tokenizer, tmp_path)
    tok2 = models.load_tokenizer(str(tmp_path))
    loaded = models.load_reward_encoder(str(tmp_path), tok2, new_head=False).eval()
    enc = tok2(["the film was great", "awful"], return_tensors="pt", padding=True, return_token_type_ids=False)
    assert enc["input_ids"][0, 0].item() == tok2.convert_tokens_to_ids(models.CLS)  # classified from <cls>
    with torch.no_grad():
        assert torch.allclose(model(**enc).logits, loaded(**enc).logits)


def test_lora_adapter_round_trip(tmp_path):
    tokenizer = models.train_tokenizer(TEXTS, 300, for_encoder=False)
    base = models.scratch_policy(sft_settings(), tokenizer)
    models.save(base, tokenizer, tmp_path / "base")
    peft = get_peft_model(
        models.load_causal_lm(str(tmp_path / "base")), LoraConfig(r=4, target_modules=["c_attn"], task_type="CAUSAL_LM")
    )
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.fill_(0.01)  # LoRA starts as the identity: make it differ
    peft.save_pretrained(tmp_path / "adapter", safe_serialization=True)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    loaded = PeftModel.from_pretrained(models.load_causal_lm(str(tmp_path / "base")), str(tmp_path / "adapter"))
    ids = tokenizer(["the cast was bad"], return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(peft.eval()(ids).logits, loaded.eval()(ids).logits)
        assert not torch.allclose(base.eval()(ids).logits, loaded(ids).logits)


def test_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(StageError, match="neither a local directory nor in the Hugging Face cache"):
        models.load_causal_lm("no-such-org/no-such-model")


def test_real_gpt2_tokenizer_loads_offline(shared_data):
    tokenizer = models.load_tokenizer(str(shared_data / "gpt2-tokenizer"))
    assert len(tokenizer) == 50257 and tokenizer.eos_token_id == 50256
    assert tokenizer.pad_token == tokenizer.eos_token
    assert tokenizer.decode(tokenizer("This movie was great.").input_ids) == "This movie was great."


def test_check_finite_weights_names_the_first_bad_trained_weight():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    model[0].bias.requires_grad_(False)
    models.check_finite_weights(model, "step 0")
    with torch.no_grad():
        model[0].bias[0] = float("nan")  # frozen: not checked
        models.check_finite_weights(model, "step 1")
        model[1].weight[2, 3] = float("inf")
        model[1].bias[1] = float("nan")
    with pytest.raises(StageError, match="step 2: weight '1.weight' became NaN/inf"):
        models.check_finite_weights(model, "step 2")


def test_check_finite_weights_is_not_fooled_by_a_sum_that_overflows():
    model = torch.nn.Linear(4, 4)
    with torch.no_grad():
        model.weight.fill_(3e38)  # every weight finite, their sum is not
    models.check_finite_weights(model, "step 0")
