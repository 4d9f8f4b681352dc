"""The report stage: report.md, a self-contained report.html, report.pdf and figures/ from one profile's results.

Reads the aggregate tables (summary.csv, rm_summary.csv, tests.csv), claims.csv, the PPO training logs, the
evaluation samples, the provenance records and any Snakemake benchmark files (report.inputs), and writes

    <out-dir>/report.md, <out-dir>/report.html (self-contained: figures inlined as base64 PNG),
    <out-dir>/report.pdf, <out-dir>/figures/*.png

Every number in the report is read or computed from those files; the only fixed text is wording.
A missing input ends the stage with one line on stderr and exit code 2, and nothing is written.

    python -m rlhf_bench.report --config results/smoke/config.json \
        --results-dir results/smoke --out-dir reports/smoke
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import markdown
import matplotlib as mpl
import seaborn as sns
from matplotlib.figure import Figure

from rlhf_bench.io import staged_outputs
from rlhf_bench.report.figures import DPI, render_figures
from rlhf_bench.report.frontier import section_frontier
from rlhf_bench.report.inputs import Inputs, load_inputs
from rlhf_bench.report.pdf import write_pdf
from rlhf_bench.report.sections import (
    section_abstract,
    section_claims,
    section_figures,
    section_ppo_table,
    section_prompts,
    section_rm_table,
    section_samples,
    section_title,
    section_verdict_card,
    section_warning,
)
from rlhf_bench.report.sections_setup import section_provenance, section_setup
from rlhf_bench.runtime import Stage

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; }
code { background: #f5f5f5; padding: 0 0.2em; }
blockquote { border-left: 4px solid #ccc; margin: 0.5em 0; padding: 0.1em 1em; color: #444; }
"""


def build_markdown(inp: Inputs, figures: list[tuple[str, str, Figure]]) -> str:
    captions = [(name, caption) for name, caption, _ in figures]
    general = [c for c in captions if not c[0].startswith("frontier")]
    sections = [
        section_title(inp),
        section_warning(inp.config),
        section_verdict_card(inp),
        section_abstract(inp),
        section_setup(inp),
        section_rm_table(inp),
        section_ppo_table(inp),
        section_figures(inp, general),
        section_frontier(inp, [c for c in captions if c[0].startswith("frontier")], first_number=len(general) + 1),
        section_samples(inp),
        section_prompts(inp),
        section_provenance(inp),
        section_claims(inp),
    ]
    return "\n".join(line for section in sections for line in section).rstrip() + "\n"


def build_html(md_text: str, title: str, pngs: dict[str, bytes]) -> str:
    """Self-contained HTML: the markdown converted, each figure reference replaced by its PNG inline."""
    body = markdown.markdown(md_text, extensions=["tables"])
    for name, png in pngs.items():
        reference = f'src="figures/{name}"'
        if reference not in body:
            raise RuntimeError(f"report: figure {name} is not referenced in the markdown")
        body = body.replace(reference, f'src="data:image/png;base64,{base64.b64encode(png).decode()}"')
    head = f'<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n<style>{CSS}</style>'
    return f'<!DOCTYPE html>\n<html lang="en">\n<head>\n{head}\n</head>\n<body>\n{body}\n</body>\n</html>\n'


def write_report(inp: Inputs, out_dir: Path) -> list[str]:
    """Render figures and text into a staging folder, then move report.md, .html, .pdf and figures/ into place."""
    with mpl.rc_context():
        sns.set_theme(style="whitegrid", context="notebook")
        figures = render_figures(inp)
        md_text = build_markdown(inp, figures)
        with staged_outputs(out_dir) as staging:
            (staging / "figures").mkdir()
            pngs = {}
            for name, _, fig in figures:
                fig.savefig(staging / "figures" / name, dpi=DPI)
                pngs[name] = (staging / "figures" / name).read_bytes()
            (staging / "report.md").write_text(md_text, encoding="utf-8")
            (staging / "report.html").write_text(build_html(md_text, inp.title, pngs), encoding="utf-8")
            write_pdf(md_text, staging / "figures", staging / "report.pdf", inp.title)
    return [name for name, _, _ in figures]


def main(argv: list[str] | None = None) -> int:
    stage = Stage("report", "Write report.md, report.html, report.pdf and figures/ from the results of one profile.")
    stage.add_results_args()

    def body(run):
        inputs = load_inputs(run.config.raw, Path(run.args.config), run.args.results_dir)
        figures = write_report(inputs, run.args.out_dir)
        out = run.args.out_dir
        print(f"{stage.module}: wrote {out / 'report.md'}, report.html, report.pdf and {len(figures)} figure(s)")

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
