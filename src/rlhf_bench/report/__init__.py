"""The paper-style report: inputs, sections, figures, HTML/Markdown rendering and the PDF."""
