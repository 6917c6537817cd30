"""The app's look: one style sheet, plain and light, so every view shares it."""

from __future__ import annotations

ACCENT = "#2563eb"

STYLE_SHEET = f"""
QMainWindow, QDialog {{ background: #fafafa; }}
QLabel[role="muted"] {{ color: #6b7280; }}
QLabel[role="title"] {{ font-size: 15px; font-weight: 600; }}
QLabel[role="error"] {{ color: #b91c1c; }}
QLabel[role="ok"] {{ color: #15803d; }}
QLabel[role="banner"] {{
    background: #eff6ff; border: 1px solid #bfdbfe; border-radius: 6px; padding: 6px 10px;
}}
QFrame[role="question"] {{
    background: #e8f0fe; border-radius: 10px;
}}
QFrame[role="answer"] {{
    background: #ffffff; border: 1px solid #e5e7eb; border-radius: 10px;
}}
QFrame[role="answer"] QTextBrowser {{ background: transparent; }}
QLabel[role="chip"] {{
    background: #f3f4f6; border: 1px solid #e5e7eb; border-radius: 9px; padding: 1px 8px;
    color: #374151;
}}
QLabel[role="marker"] {{
    background: #fef3c7; border: 1px solid #fcd34d; border-radius: 9px; padding: 1px 8px;
    color: #92400e;
}}
QLabel[role="risk-read"] {{ background: #dcfce7; color: #166534; border-radius: 4px;
    padding: 2px 8px; font-weight: 600; }}
QLabel[role="risk-write"] {{ background: #fef3c7; color: #92400e; border-radius: 4px;
    padding: 2px 8px; font-weight: 600; }}
QLabel[role="risk-execute"], QLabel[role="risk-network"] {{ background: #fee2e2;
    color: #991b1b; border-radius: 4px; padding: 2px 8px; font-weight: 600; }}
QToolButton[role="feedback"] {{
    border: 1px solid transparent; border-radius: 6px; padding: 2px 8px; color: #4b5563;
}}
QToolButton[role="feedback"]:hover {{ border-color: #d1d5db; background: #f9fafb; }}
QToolButton[role="feedback"]:checked {{ background: #dbeafe; border-color: #93c5fd;
    color: #1e3a8a; }}
QPushButton[role="primary"] {{
    background: {ACCENT}; color: white; border: none; border-radius: 6px; padding: 6px 16px;
}}
QPushButton[role="primary"]:disabled {{ background: #93c5fd; }}
QListWidget#conversations {{ border: none; background: #f3f4f6; }}
QListWidget#conversations::item {{ padding: 7px 8px; border-radius: 6px; }}
QListWidget#conversations::item:selected {{ background: #dbeafe; color: #111827; }}
QPlainTextEdit#composer {{
    border: 1px solid #d1d5db; border-radius: 8px; padding: 4px; background: white;
}}
QScrollArea#transcript {{ border: none; background: #fafafa; }}
QWidget#transcriptBody {{ background: #fafafa; }}
QStatusBar QLabel {{ color: #374151; padding: 0 8px; }}
"""
