"""Draw Jackdaw's icon: an SVG written by hand, rendered with Qt to PNG, ICO and ICNS.

    .venv/bin/python packaging/make_icon.py      (writes packaging/icons/; outputs are committed)

A jackdaw's head in profile: a dark bird with a grey nape and the species' pale eye, on a
rounded square. The ICO and ICNS files hold PNG images, which every supported Windows and
macOS version reads, so no imaging library is needed.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent / "icons"

SVG = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
  <defs>
    <linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#4C7DD9"/>
      <stop offset="1" stop-color="#2A4E9B"/>
    </linearGradient>
  </defs>
  <rect x="8" y="8" width="240" height="240" rx="52" fill="url(#sky)"/>
  <!-- body and breast -->
  <path d="M70 238 C 58 190, 72 146, 112 126 L 178 150 C 196 188, 192 220, 186 238 Z"
        fill="#1C1F26"/>
  <!-- head -->
  <circle cx="128" cy="104" r="52" fill="#1C1F26"/>
  <!-- the grey nape and cheek -->
  <path d="M84 76 C 70 104, 74 138, 104 156 C 96 130, 98 104, 114 84 C 104 78, 94 76, 84 76 Z"
        fill="#A9B2BD"/>
  <!-- beak -->
  <path d="M172 92 L 222 110 L 172 124 Z" fill="#101217"/>
  <!-- the pale eye -->
  <circle cx="150" cy="98" r="13" fill="#EEF2F6"/>
  <circle cx="153" cy="98" r="5.5" fill="#101217"/>
</svg>
"""

PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def render_png(svg: bytes, size: int) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(svg))
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data().data())


def ico(pngs: dict[int, bytes]) -> bytes:
    """A Windows .ico holding PNG images (Vista and later read PNG entries)."""
    sizes = [s for s in (16, 24, 32, 48, 64, 256) if s in pngs]
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    entries, data = b"", b""
    for size in sizes:
        png = pngs[size]
        dim = 0 if size >= 256 else size  # 0 means 256
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png), offset + len(data))
        data += png
    return header + entries + data


def icns(pngs: dict[int, bytes]) -> bytes:
    """A macOS .icns holding PNG images (OSType per size; 10.7 and later)."""
    types = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09"}
    body = b"".join(
        kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size]
        for size, kind in types.items()
        if size in pngs
    )
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    ICONS.mkdir(exist_ok=True)
    svg = SVG.encode("utf-8")
    (ICONS / "jackdaw.svg").write_bytes(svg)
    pngs = {size: render_png(svg, size) for size in PNG_SIZES}
    (ICONS / "jackdaw.png").write_bytes(pngs[256])
    (ICONS / "jackdaw.ico").write_bytes(ico(pngs))
    (ICONS / "jackdaw.icns").write_bytes(icns(pngs))
    for path in sorted(ICONS.iterdir()):
        print(f"{path.relative_to(ICONS.parent.parent)}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
