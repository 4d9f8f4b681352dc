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
    body = re.sub(r"<(t[dh])(?:\s[^>]*)?>(.*?)</\1>", flat_cell, body, flags=re.S)
    return re.sub(r"<table>(.*?)</table>", lambda m: f"<table>{column_widths(m.group(1))}</table>", body, flags=re.S)


def flat_cell(match: re.Match) -> str:
    """A table cell as plain text; a verdict's coloured span (the verdict card) colours the whole cell instead."""
    tag, inner = match.group(1), match.group(2)
    colour = re.search(r"background:\s*(#[0-9a-fA-F]{6})", inner)
    fill = f' bgcolor="{colour.group(1)}"' if colour else ""
    return f'<{tag} align="left"{fill}>{re.sub(r"<[^>]+>", "", inner)}</{tag}>'


def column_widths(table: str) -> str:
    """Give each header cell a width in proportion to its column's typical text (fpdf2 splits evenly otherwise,
    which squeezes a table's long 'reason' column into a ribbon)."""
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.S) for row in rows]
    n = len(cells[0]) if cells else 0
    if n == 0 or any(len(row) != n for row in cells):
        return table
    # sqrt: long columns get more room, short ones keep enough for their header word
    weights = [max(4.0, (sum(len(row[i]) for row in cells) / len(cells)) ** 0.5) for i in range(n)]
    total = sum(weights)
    widths = iter(f"{100 * w / total:.0f}%" for w in weights)
    return re.sub(r'<th align="left">', lambda m: f'<th align="left" width="{next(widths)}">', table, count=n)


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
