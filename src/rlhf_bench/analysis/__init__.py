"""Analysis stages: per-seed metrics to summaries, significance tests, claim verdicts, bundle comparison."""
