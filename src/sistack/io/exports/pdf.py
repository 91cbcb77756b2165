"""HTML to PDF with WeasyPrint: the executive report page, printed.

The report carries its stylesheet and its charts (inline SVG; a scatter plot as an embedded
``data:`` image) inside the document. The fetcher reads ``data:`` URLs only, so printing never
requests anything, whatever a URL in the HTML might name.
"""

from __future__ import annotations

import weasyprint
from weasyprint.urls import URLFetcher


def html_to_pdf(html: str) -> bytes:
    """Render a self-contained HTML document (print CSS, inline SVG) to PDF bytes."""
    fetcher = URLFetcher(allowed_protocols={"data"}, timeout=5)
    document = weasyprint.HTML(string=html, url_fetcher=fetcher, base_url="data:,")
    pdf: bytes = document.write_pdf()
    return pdf
