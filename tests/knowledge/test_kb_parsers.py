from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import parsers
from knowledge.parsers import (
    BinaryContentError,
    EncryptedDocumentError,
    NoTextLayerError,
    ParsedDocument,
    ParseError,
    Section,
)
from knowledge.parsers.base import decode_text, looks_binary
from knowledge.parsers.markdown import split_markdown
from tests.knowledge.pdfgen import pdf_bytes, write_encrypted_pdf, write_textless_pdf


def parse(name: str, data: bytes) -> ParsedDocument:
    parser = parsers.parser_for(Path(name))
    assert parser is not None, name
    return parser.parse(data, Path(name))


def test_registry_maps_extensions_to_types() -> None:
    assert parsers.parser_for(Path("a.MD")).name == "markdown"  # type: ignore[union-attr]
    assert parsers.parser_for(Path("a.pdf")).name == "pdf"  # type: ignore[union-attr]
    assert parsers.parser_for(Path("a.htm")).name == "html"  # type: ignore[union-attr]
    assert parsers.parser_for(Path("a.rs")).name == "code"  # type: ignore[union-attr]
    assert parsers.parser_for(Path("README")).name == "text"  # type: ignore[union-attr]
    assert parsers.parser_for(Path("a.unknownext")) is None
    assert set(parsers.registered_types()) >= {"text", "markdown", "pdf", "html", "code"}


def test_a_new_type_is_one_small_registration() -> None:
    class OrgParser:
        name = "orgmode-test"
        extensions = frozenset({".orgtest"})

        def parse(self, data: bytes, path: Path) -> ParsedDocument:
            return ParsedDocument([Section(data.decode(), heading="org")])

    parsers.register(OrgParser())
    try:
        assert parse("x.orgtest", b"* hello").sections[0].heading == "org"
    finally:
        parsers._by_extension.pop(".orgtest")
        parsers._by_name.pop("orgmode-test")


def test_text_utf8_latin1_and_undecodable_bytes() -> None:
    assert parse("a.txt", "héllo wörld".encode()).sections[0].text == "héllo wörld"
    latin = "Café crème brûlée, façade, naïve résumé — déjà vu. " * 3
    doc = parse("b.txt", latin.encode("latin-1", errors="replace"))
    assert "Café crème" in doc.sections[0].text
    assert doc.warnings and "not UTF-8" in doc.warnings[0]
    text, warnings = decode_text(b"ok \xff\xfe\xfd ok" + b"\x81\x8d" * 3)
    assert "ok" in text
    assert warnings  # either a guessed encoding or a count of replaced bytes, never silence


def test_binary_content_is_refused() -> None:
    blob = bytes(range(256)) * 40
    assert looks_binary(blob)
    with pytest.raises(BinaryContentError):
        parse("photo.txt", blob)
    # UTF-16 text has NULs but a BOM: it is text.
    assert not looks_binary("hello".encode("utf-16"))


def test_markdown_splits_on_headings_with_breadcrumbs() -> None:
    text = """---
title: Notes
---
Intro line.

# Setup
Install it.

## Linux
Use apt.

```bash
# not a heading
```

Windows
-------
Use the installer.

### Deep ###
Deep text.
"""
    sections = split_markdown(text)
    headings = [s.heading for s in sections]
    assert headings == [
        "",
        "",
        "Setup",
        "Setup > Linux",
        "Setup > Windows",
        "Setup > Windows > Deep",
    ]
    assert "# not a heading" in sections[3].text
    assert sections[0].text.startswith("---")


def test_html_keeps_visible_text_only() -> None:
    html = b"""<html><head><title>Page T</title><style>.x{color:red}</style>
    <script>var secret = 1;</script></head><body>
    <p>Before any heading &amp; more.</p>
    <h1>Main <b>Title</b></h1><p>First para.</p><div>Second <i>block</i></div>
    <h2>Sub</h2><ul><li>one</li><li>two</li></ul><noscript>enable js</noscript>
    </body></html>"""
    doc = parse("p.html", html)
    text = " ".join(s.text for s in doc.sections)
    assert "secret" not in text and "color" not in text and "enable js" not in text
    assert "Before any heading & more." in text
    assert [s.heading for s in doc.sections] == ["Page T", "Main Title", "Main Title > Sub"]
    assert "one" in doc.sections[2].text and "two" in doc.sections[2].text


def test_code_sections_start_at_definitions() -> None:
    source = b"""import os

# Reads the config.
def load_config(path):
    return open(path).read()


class Store:
    def get(self):
        pass
"""
    doc = parse("mod.py", source)
    assert [s.heading for s in doc.sections] == [
        "mod.py",
        "mod.py: def load_config(path):",
        "mod.py: class Store:",
    ]
    assert doc.sections[1].text.startswith("# Reads the config.")


def test_pdf_text_per_page(tmp_path: Path) -> None:
    doc = parse("a.pdf", pdf_bytes(["First page about otters.", "Second page about beavers."]))
    assert [(s.page, s.text.strip()) for s in doc.sections] == [
        (1, "First page about otters."),
        (2, "Second page about beavers."),
    ]


def test_pdf_encrypted_textless_and_corrupt(tmp_path: Path) -> None:
    enc = write_encrypted_pdf(tmp_path / "e.pdf", ["secret"])
    with pytest.raises(EncryptedDocumentError) as info:
        parse("e.pdf", enc.read_bytes())
    assert info.value.status == "encrypted"
    blank = write_textless_pdf(tmp_path / "scan.pdf")
    with pytest.raises(NoTextLayerError) as info2:
        parse("scan.pdf", blank.read_bytes())
    assert info2.value.status == "no_text"
    with pytest.raises(ParseError) as info3:
        parse("bad.pdf", b"%PDF-1.4\nthis is not really a pdf\n" * 20)
    assert info3.value.status == "failed"
    truncated = pdf_bytes(["cut short"])[:150]
    with pytest.raises(ParseError):
        parse("cut.pdf", truncated)
