"""Building, saving and loading the three model types: tokenizer, GPT-2 policy, reward encoder.

`init: scratch` builds small models of the documented architectures (GPT-2; DistilBERT; DeBERTa-v2) with a
byte-level BPE tokenizer trained on the experiment's own text; anything else is a hub id or a directory,
loaded with the real `from_pretrained` code path (no trust_remote_code, safetensors weights only). A hub id
may carry a pinned revision (`id@revision`); `download.resolve` turns it into the cached snapshot, offline.
Weights are always saved as safetensors.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)
from transformers.utils import is_tokenizers_available

from rlhf_bench.io import StageError
from rlhf_bench.settings import RewardModelSettings, SFTSettings
from rlhf_bench.train import download

# What from_pretrained raises for a missing, foreign or damaged model: a truncated safetensors file is a
# SafetensorError ("incomplete metadata, file not fully covered"), which is neither an OSError nor a ValueError.
LOAD_ERRORS = (OSError, ValueError, SafetensorError)
EOS = "<|endoftext|>"  # GPT-2's own end-of-text token, so a scratch policy and `gpt2` behave alike
PAD, CLS = "<pad>", "<cls>"


def train_tokenizer(texts: list[str], vocab_size: int, for_encoder: bool) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2's scheme) on the given texts; an encoder's adds <cls> in front of every text,
    because DistilBERT and DeBERTa classify from the first position."""
    # Imported here, not at the top: the stages that only load models never need the tokenizers library (a GPU
    # machine whose tokenizers is too new for transformers 4.33.1 hides it and loads slow tokenizers instead).
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import TemplateProcessing

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        texts,
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS, PAD, CLS] if for_encoder else [EOS],
        show_progress=False,
    )
    if for_encoder:
        bpe.post_processor = TemplateProcessing(
            single=f"{CLS} $A", pair=f"{CLS} $A $B", special_tokens=[(CLS, bpe.token_to_id(CLS))]
        )
        specials = dict(pad_token=PAD, cls_token=CLS, eos_token=EOS)
    else:
        specials = dict(eos_token=EOS, bos_token=EOS, pad_token=EOS)
    # No token_type_ids, as GPT-2's and DistilBERT's own tokenizers: GPT-2 would add the embedding of token 0
    # to every position if it were given them.
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, model_input_names=["input_ids", "attention_mask"], **specials
    )


def scratch_policy(settings: SFTSettings, tokenizer) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=settings.max_length,
        n_embd=settings.n_embd,
        n_layer=settings.n_layer,
        n_head=settings.n_head,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return GPT2LMHeadModel(config)


def scratch_reward_model(settings: RewardModelSettings, tokenizer):
    """One-logit sequence classifiers: the reward is the logit."""
    common = dict(
        vocab_size=len(tokenizer),
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        max_position_embeddings=settings.max_length + 2,
    )
    if settings.architecture == "distilbert":
        width, depth, heads = settings.hidden_size, settings.n_layer, settings.n_head
        config = DistilBertConfig(dim=width, hidden_dim=4 * width, n_layers=depth, n_heads=heads, **common)
        return DistilBertForSequenceClassification(config)
    config = DebertaV2Config(
        hidden_size=settings.hidden_size,
        intermediate_size=4 * settings.hidden_size,
        num_hidden_layers=settings.n_layer,
        num_attention_heads=settings.n_head,
        relative_attention=True,  # as deberta-v3-base
        pos_att_type=["p2c", "c2p"],
        position_buckets=64,
        pooler_hidden_size=settings.hidden_size,
        **common,
    )
    return DebertaV2ForSequenceClassification(config)


def load_tokenizer(name_or_path: str):
    path = str(download.resolve(name_or_path, "model", "tokenizer", files="tokenizer"))
    try:
        # Without the tokenizers library (a GPU machine whose own is too new for transformers 4.33.1, see
        # benchmarks/gpu_ppo.py) the slow tokenizer of the same files: byte-level BPE gives the same tokens.
        tokenizer = AutoTokenizer.from_pretrained(path, use_fast=is_tokenizers_available())
    except (OSError, ValueError, ImportError) as exc:  # ImportError: a sentencepiece tokenizer without the library
        raise StageError(_not_found(path, "tokenizer", exc)) from None
    if tokenizer.pad_token is None:  # GPT-2 has none; trl pads with eos too
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(name_or_path: str):
    path = str(download.resolve(name_or_path, "model", "causal language model"))
    try:
        return AutoModelForCausalLM.from_pretrained(path, use_safetensors=True)
    except LOAD_ERRORS as exc:
        raise StageError(_not_found(path, "causal language model", exc)) from None


def load_reward_encoder(name_or_path: str, tokenizer, new_head: bool):
    """A trained reward model, or (new_head) a pretrained encoder that gets a fresh one-logit head."""
    path = str(download.resolve(name_or_path, "model", "sequence-classification model"))
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, ignore_mismatched_sizes=new_head, use_safetensors=True
        )
    except LOAD_ERRORS as exc:
        raise StageError(_not_found(path, "sequence-classification model", exc)) from None
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model


def _not_found(name: str, what: str, exc: Exception) -> str:
    if isinstance(exc, SafetensorError):
        from rlhf_bench.layout import producing_rule

        weights = ", ".join(str(p) for p in sorted(Path(name).glob("*.safetensors"))) or name
        rule = producing_rule(Path(name, "model.safetensors")) or "that wrote it"
        return f"{weights}: damaged safetensors file ({exc}). Fix: rerun the rule '{rule}'."
    if Path(name).exists():
        return f"{name}: cannot load a {what} from this directory ({type(exc).__name__}: {str(exc)[:160]})."
    return (
        f"{what} '{name}' is neither a local directory nor in the Hugging Face cache. Fix: fetch it on a node with "
        f"internet (`huggingface-cli download {name}`) or set the config to a local path."
    )


def load_classifier(name_or_path: str):
    """A trained sequence classifier with its own labels (the judge), in eval mode."""
    path = str(download.resolve(name_or_path, "model", "judge classifier"))
    try:
        return AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True).eval()
    except LOAD_ERRORS as exc:
        raise StageError(_not_found(path, "judge classifier", exc)) from None


def save(model, tokenizer, out_dir: str | Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)  # transformers 4.33 defaults to pickles
    tokenizer.save_pretrained(out_dir)


def prompt_token_limit(model_config, max_new_tokens: int) -> int:
    """How many prompt tokens fit before `max_new_tokens` in the model's context (GPT-2: n_positions).

    Longer prompts (multi-turn dialogues) are cut from the left: the last turn is what the policy answers.
    """
    context = getattr(model_config, "n_positions", None) or getattr(model_config, "max_position_embeddings", None)
    if context is None:
        return 10**9
    if context <= max_new_tokens:
        raise StageError(
            f"max_new_tokens={max_new_tokens} does not fit the policy's context of {context} tokens. "
            "Fix: lower generation.max_new_tokens (or evaluate.generation.max_new_tokens) or raise sft.max_length."
        )
    return context - max_new_tokens


def device() -> torch.device:
    """Where models run: the GPU when torch sees one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def optimizer_step(loss, model, optimizer, schedule, scaler=None) -> None:
    """One step of the sft and reward-model loops: backward, clip the gradient norm at 1.0, step, schedule.
    With fp16's grad scaler the loss is scaled, and steps with inf gradients are skipped by the scaler."""
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)


def require_gpu(required: bool, where: str) -> None:
    """Stop at once where a GPU profile landed on a node without one (or a container started without --nv)."""
    if required and not torch.cuda.is_available():
        raise StageError(
            f"{where}: this config needs a GPU (require_gpu: true) but torch sees no CUDA device. Fix: run on a GPU "
            "node (the rule asks for resources gpu=1; apptainer needs --nv), or set require_gpu: false."
        )


def autocast(mixed_precision: str, on: torch.device):
    """(context factory, grad scaler or None, precision that runs) for `mixed_precision` on a device.

    As accelerate: fp16/bf16 autocast on a GPU (fp16 with loss scaling); on a CPU bf16 autocasts and fp16 runs
    in fp32. The precision that ran goes to provenance.json.
    """
    if on.type == "cuda" and mixed_precision in ("fp16", "bf16"):
        dtype = torch.float16 if mixed_precision == "fp16" else torch.bfloat16
        scaler = torch.amp.GradScaler("cuda") if mixed_precision == "fp16" else None
        return (lambda: torch.autocast("cuda", dtype=dtype)), scaler, mixed_precision
    if on.type == "cpu" and mixed_precision == "bf16":
        return (lambda: torch.autocast("cpu", dtype=torch.bfloat16)), None, "bf16"
    return contextlib.nullcontext, None, "no"


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def check_finite(named: dict[str, float], where: str) -> None:
    """A NaN or inf stops the job with the step that produced it, never a silent report."""
    bad = {k: v for k, v in named.items() if not torch.isfinite(torch.as_tensor(v, dtype=torch.float64)).all()}
    if bad:
        raise StageError(f"{where}: non-finite values {bad}. Fix: lower the learning rate or disable fp16.")


def check_finite_weights(model: torch.nn.Module, where: str) -> None:
    """A trained weight that became NaN or inf stops the job, naming the first such weight.

    Checked through each weight's sum, in one device sync: a sum is finite only if every element is (a NaN makes it
    NaN, an inf inf or NaN), so only a non-finite sum, a real NaN/inf or an overflow, is looked at element by element.
    That costs a pass over the weights without a mask per weight: ~1 ms instead of ~25 ms a PPO step for 5M weights
    on one CPU thread (benchmarks/ppo_throughput.py)."""
    named = [(name, param) for name, param in model.named_parameters() if param.requires_grad]
    if not named:
        return
    with torch.no_grad():
        sums = torch.stack([param.detach().sum(dtype=torch.float32) for _, param in named])
        if bool(torch.isfinite(sums).all()):
            return
        for name, param in named:
            if not torch.isfinite(param).all():
                raise StageError(
                    f"{where}: weight '{name}' became NaN/inf. Fix: lower the learning rate or disable fp16."
                )
