"""report.pdf from the report's markdown: pure Python (fpdf2), so it builds wherever the DAG runs.

fpdf2's HTML subset has no markup inside table cells, so cells are flattened to text; everything else
(headings, paragraphs, lists, tables, figures) comes through. The creation date is fixed, so the same
report gives the same bytes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import markdown
import matplotlib

FIXED_DATE = datetime(2000, 1, 1, tzinfo=UTC)
FONT_FILES = {"": "DejaVuSans", "B": "DejaVuSans-Bold", "I": "DejaVuSans-Oblique", "BI": "DejaVuSans-BoldOblique"}
PAGE_WIDTH_PX = 520  # figure width on an A4 page at fpdf2's 96 dpi default, margins included


def pdf_html(md_text: str, figures_dir: Path) -> str:
    body = markdown.markdown(md_text, extensions=["tables"])
    body = re.sub(
        r'<img alt="[^"]*" src="figures/([^"]+)" */?>',
        lambda m: f'<img src="{figures_dir / m.group(1)}" width="{PAGE_WIDTH_PX}">',
        body,
    )
    return re.sub(
        r"<(t[dh])(?:\s[^>]*)?>(.*?)</\1>",
        lambda m: f"<{m.group(1)}>{re.sub(r'<[^>]+>', '', m.group(2))}</{m.group(1)}>",
        body,
        flags=re.S,
    )


def write_pdf(md_text: str, figures_dir: Path, out: Path, title: str) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(title)
    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu: the Unicode font matplotlib ships
    for style, name in FONT_FILES.items():
        pdf.add_font("DejaVu", style, str(fonts / f"{name}.ttf"))
    pdf.set_font("DejaVu", size=8)
    pdf.add_page()
    pdf.write_html(pdf_html(md_text, figures_dir), font_family="DejaVu")
    pdf.output(str(out))
