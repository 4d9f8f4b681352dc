"""Independent judges: what says whether a text is negative or positive, without asking the reward model.

VADER (Hutto & Gilbert 2014) is a rule-based lexicon: offline, deterministic, and unrelated to anything the
policy was optimised against, so a policy that fools the reward model does not fool it too. The paper profile
uses a trained sentiment classifier from the hub instead (`judge: classifier`), read by label name: the
positivity score is the softmax probability of the label called `judge_positive_label`, never "column 1".
"""

from __future__ import annotations

import torch

from rlhf_bench.io import StageError

# VADER's own recommended thresholds on the compound score (vaderSentiment README, "About the Scoring").
POSITIVE_AT, NEGATIVE_AT = 0.05, -0.05


class VaderJudge:
    name = "vader"

    def __init__(self):
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer = SentimentIntensityAnalyzer()

    def __call__(self, texts: list[str]) -> list[tuple[float, str]]:
        """(positivity in [0, 1], label) per text; positivity is the compound score mapped from [-1, 1]."""
        results = []
        for text in texts:
            compound = self.analyzer.polarity_scores(text)["compound"]
            label = "positive" if compound >= POSITIVE_AT else "negative" if compound <= NEGATIVE_AT else "neutral"
            results.append(((compound + 1.0) / 2.0, label))
        return results


def label_index(id2label: dict, wanted: str, model: str) -> int:
    """The class index whose label name is `wanted` (case-insensitive); StageError listing the names if none."""
    matches = [int(i) for i, name in id2label.items() if str(name).lower() == wanted.lower()]
    if len(matches) != 1:
        names = ", ".join(str(name) for _, name in sorted(id2label.items(), key=lambda kv: int(kv[0])))
        raise StageError(
            f"judge '{model}': no single label named '{wanted}' (its labels: {names}). "
            "Fix: set evaluate.judge_positive_label / judge_negative_label to its names."
        )
    return matches[0]


class ClassifierJudge:
    """A sequence classifier (e.g. distilbert-base-uncased-finetuned-sst-2-english) as the judge."""

    def __init__(self, model_ref: str, positive_label: str, negative_label: str, device=None, batch_size: int = 32):
        from rlhf_bench.train import models

        self.name = model_ref
        self.model = models.load_classifier(model_ref)
        self.tokenizer = models.load_tokenizer(model_ref)
        if device is not None:
            self.model.to(device)
        id2label = self.model.config.id2label
        self.positive = label_index(id2label, positive_label, model_ref)
        self.negative = label_index(id2label, negative_label, model_ref)
        self.batch_size = batch_size
        # The classifier's own context (512 for BERT-likes); a tokenizer loaded from a path may not know it.
        self.max_length = min(getattr(self.model.config, "max_position_embeddings", 512) or 512, 512)

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> list[tuple[float, str]]:
        """(probability of the positive label, `positive`/`negative`/`neutral` by the most probable label)."""
        results = []
        on = next(self.model.parameters()).device
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(
                texts[start : start + self.batch_size],
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            ).to(on)
            probs = torch.softmax(self.model(**enc).logits.float(), dim=-1).cpu()
            for row in probs:
                top = int(row.argmax())
                label = "positive" if top == self.positive else "negative" if top == self.negative else "neutral"
                results.append((float(row[self.positive]), label))
        return results


def make_judge(settings, device=None):
    """The judge an evaluation block names (`settings`: EvalSettings; a plain name for vader/none)."""
    name = settings if isinstance(settings, str) else settings.judge
    if name == "vader":
        return VaderJudge()
    if name == "classifier":
        return ClassifierJudge(
            settings.judge_model, settings.judge_positive_label, settings.judge_negative_label, device
        )
    return None
