"""PDF via pypdf: one section per page, so every hit can cite its page.

An encrypted PDF is opened with the empty password first (many "protected" PDFs only
restrict printing); otherwise it is reported as encrypted. A PDF whose pages carry no text
(a scan) is reported as having no text layer: we do not OCR.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from knowledge.parsers.base import (
    EncryptedDocumentError,
    NoTextLayerError,
    ParsedDocument,
    ParseError,
    Section,
    stop_requested,
)

# pypdf logs a warning for every oddity of a damaged file; the outcome is on the document row.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class PdfParser:
    name = "pdf"
    extensions = frozenset({".pdf"})

    def parse(self, data: bytes, path: Path) -> ParsedDocument:
        import pypdf
        from pypdf.errors import FileNotDecryptedError, PdfReadError

        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
        except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
            raise ParseError(f"not a readable PDF: {exc}") from exc
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception as exc:  # unsupported algorithm, missing crypto library ...
                raise EncryptedDocumentError(f"encrypted PDF ({exc})") from exc
            if not opened:
                raise EncryptedDocumentError("encrypted PDF: needs a password")
        sections: list[Section] = []
        warnings: list[str] = []
        try:
            pages = reader.pages
            n_pages = len(pages)
        except FileNotDecryptedError as exc:
            raise EncryptedDocumentError("encrypted PDF: needs a password") from exc
        except Exception as exc:  # pypdf raises many types for damaged page trees
            raise ParseError(f"damaged PDF: {exc}") from exc
        failed_pages = 0
        for number in range(1, n_pages + 1):
            if stop_requested():
                warnings.append(f"stopped after page {number - 1} of {n_pages}")
                break
            try:  # pages are read one at a time: a huge PDF never sits in memory whole
                text = pages[number - 1].extract_text() or ""
            except FileNotDecryptedError as exc:
                raise EncryptedDocumentError("encrypted PDF: needs a password") from exc
            except Exception:  # one bad page should not lose the others
                failed_pages += 1
                continue
            if text.strip():
                sections.append(Section(text=text, page=number))
        if failed_pages:
            warnings.append(f"text of {failed_pages} of {n_pages} page(s) could not be read")
        if not sections:
            if failed_pages:
                raise ParseError("damaged PDF: no page could be read")
            raise NoTextLayerError(
                f"no text layer in {n_pages} page(s) (a scan? OCR is not supported)"
            )
        return ParsedDocument(sections, warnings)


PARSER = PdfParser()
