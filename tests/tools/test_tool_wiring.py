"""tool_executor_from_config: config -> executor, and read_file's text extraction through
the knowledge parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_core.config import Config, Paths
from agent_core.tool_wiring import knowledge_text_extractor, tool_executor_from_config
from tools.base import ToolError


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in Helvetica, xref offsets computed (no PDF library)."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.fixture
def setup(tmp_path: Path, memory):
    watched = tmp_path / "Docs"
    watched.mkdir()
    config = Config()
    config.knowledge.watched_folders = [str(watched)]
    config.tools.confirm_timeout_s = 3.0
    config.tools.run_python_timeout_s = 2.0
    executor = tool_executor_from_config(config, Paths.from_env(), memory)
    return executor, watched


def test_config_reaches_the_executor(setup) -> None:
    executor, watched = setup
    assert executor.confirm_timeout_s == 3.0
    assert executor.registry.get("run_python").timeout_s == 12.0  # its own limit + slack
    assert watched.resolve() in executor.policy.read_roots
    notes = Paths.from_env().data_dir / "notes"
    assert notes.resolve() in executor.policy.read_roots  # the default notes folder
    assert executor.audit is not None and "search_knowledge" not in executor.registry.names()


def test_read_file_extracts_pdf_and_html_text(setup) -> None:
    executor, watched = setup
    (watched / "report.pdf").write_bytes(tiny_pdf("Hello from a PDF"))
    (watched / "page.html").write_text(
        "<html><head><script>steal()</script></head><body><h1>Title</h1>"
        "<p>Fish &amp; chips</p></body></html>"
    )
    pdf = executor.call("read_file", {"path": "report.pdf"})
    assert pdf.ok and "Hello from a PDF" in pdf.observation and "[page 1]" in pdf.observation
    html = executor.call("read_file", {"path": "page.html"})
    assert html.ok and "Fish & chips" in html.observation and "steal" not in html.observation


def test_plain_text_types_are_shown_as_they_are(setup) -> None:
    executor, watched = setup
    (watched / "note.md").write_text("# Title\n\n- item\n")
    assert executor.call("read_file", {"path": "note.md"}).observation.endswith(
        "# Title\n\n- item\n"
    )


def test_unreadable_documents_are_error_observations(setup) -> None:
    executor, watched = setup
    (watched / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    outcome = executor.call("read_file", {"path": "broken.pdf"})
    assert outcome.status == "error" and "could not be read" in outcome.observation
    with pytest.raises(ToolError):
        knowledge_text_extractor(b"%PDF-1.4 not really", Path("x.pdf"))
