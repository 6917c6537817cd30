"""HTML: visible text only (stdlib html.parser), one section per heading like Markdown."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from knowledge.parsers.base import ParsedDocument, Section, decode_or_refuse

_SKIP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object"}
_BLOCK = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "blockquote",
    "pre",
    "hr",
    "dd",
    "dt",
    "dl",
    "figure",
    "figcaption",
    "main",
    "form",
    "td",
    "th",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.title = ""
        self._trail: list[str] = []
        self._body: list[str] = []
        self._skip_depth = 0
        self._in_title = False
        self._heading_level = 0
        self._heading_text: list[str] = []

    def _flush(self) -> None:
        text = "".join(self._body)
        if text.strip():
            self.sections.append(
                Section(text=text, heading=" > ".join(h for h in self._trail if h))
            )
        self._body.clear()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP:
            self._skip_depth += 1
        elif tag in _HEADINGS and not self._skip_depth:
            self._flush()
            self._heading_level = _HEADINGS[tag]
            self._heading_text = []
        elif tag in _BLOCK:
            self._body.append("\n\n" if tag in ("p", "div", "section", "article") else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _HEADINGS and self._heading_level:
            level = self._heading_level
            del self._trail[level - 1 :]
            self._trail.extend([""] * (level - 1 - len(self._trail)))
            self._trail.append(" ".join("".join(self._heading_text).split()))
            self._heading_level = 0
        elif tag in _BLOCK:
            self._body.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._skip_depth:
            return
        elif self._heading_level:
            self._heading_text.append(data)
        else:
            self._body.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


class HtmlParser:
    name = "html"
    extensions = frozenset({".html", ".htm", ".xhtml"})

    def parse(self, data: bytes, path: Path) -> ParsedDocument:
        text, warnings = decode_or_refuse(data)
        extractor = _TextExtractor()
        extractor.feed(text)
        extractor.close()
        sections = extractor.sections
        title = " ".join(extractor.title.split())
        if title:
            # The page title names the whole page: use it where no heading does.
            sections = [Section(s.text, s.heading or title, s.page) for s in sections]
        return ParsedDocument(sections, warnings)


PARSER = HtmlParser()
