"""Independent judges: what says whether a text is negative or positive, without asking the reward model.

VADER (Hutto & Gilbert 2014) is a rule-based lexicon: offline, deterministic, and unrelated to anything the
policy was optimised against, so a policy that fools the reward model does not fool it too.
"""

from __future__ import annotations

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


def make_judge(name: str):
    return VaderJudge() if name == "vader" else None
