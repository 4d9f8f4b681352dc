"""The report's markdown pieces: inert text, code spans, tables, intervals, and the names it shows."""

from __future__ import annotations

import html
import math
import re

from rlhf_bench.analysis.metrics import CONFIDENCE, fmt

POLICY_NAMES = {"base": "base", "rlhf": "RLHF"}
# Units of the PPO reward, by the config's ppo.reward (the reward is not always a reward-model score).
REWARD_UNITS = {"reward_model": "reward-model score", "negative_word_count": "minus word count"}
LEVEL = f"{CONFIDENCE:.0%}"  # the confidence level of every interval, as the report's words state it
NONE = "–"  # a cell with nothing to show (no documented value, no test); a missing number is fmt's 'n/a'


def fmt_ci(mean: float, low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return fmt(mean)
    return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


def inside(value: float, low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "no interval"
    return "inside" if low <= value <= high else "outside"


def text(value, limit: int | None = None) -> str:
    """Untrusted text (generations, config strings) made inert for markdown and HTML, on one line.

    HTML-escaped so a generated '<script>' stays text, and markdown's inline markers are
    backslash-escaped so '*' or '|' can neither format the text nor split a table cell.
    """
    flat = " ".join(str(value).split())
    if limit is not None and len(flat) > limit:
        flat = flat[:limit].rstrip() + "…"
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", html.escape(flat, quote=False))


def code(name: str) -> str:
    """An identifier (experiment, metric) as inline code, or escaped text if it could break the span."""
    return f"`{name}`" if re.fullmatch(r"[\w.\-/: ]+", str(name)) else text(name)


def section(title: str, *paragraphs: str) -> list[str]:
    """A section's heading and its opening paragraphs, each followed by a blank line."""
    return [f"## {title}", ""] + [line for paragraph in paragraphs for line in (paragraph, "")]


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]
