"""The Learning page's layout: runs with a step-by-step replay viewer, experiences, lessons,
prompt versions, and the refine/export actions. No service calls here."""

from __future__ import annotations

import html
import json
import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop.widgets import muted_label
from models.discovery import recorded_model_label

RUN_FILTERS = ["All runs", "Rated up", "Rated down", "Corrected", "Not rated", "Failed or stopped"]
MATCH = QBrush(QColor("#dcfce7"))
DIVERGED = QBrush(QColor("#fecaca"))


def when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else ""


def table(headers: list[str], stretch: int = 0) -> QTableWidget:
    widget = QTableWidget(0, len(headers))
    widget.setHorizontalHeaderLabels(headers)
    widget.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    widget.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    widget.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    widget.verticalHeader().hide()
    header = widget.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    return widget


def fill(widget: QTableWidget, rows: list[list[str]], keys: list[str]) -> None:
    """Rows of text; ``keys`` (one per row) are kept on column 0 for the controller."""
    widget.setRowCount(0)
    for values, key in zip(rows, keys, strict=True):
        r = widget.rowCount()
        widget.insertRow(r)
        for c, text in enumerate(values):
            item = QTableWidgetItem(text)
            item.setToolTip(text if len(text) > 60 else "")
            if c == 0:
                item.setData(Qt.ItemDataRole.UserRole, key)
            widget.setItem(r, c, item)


def selected_key(widget: QTableWidget) -> str | None:
    row = widget.currentRow()
    if row < 0 or not widget.selectedItems():
        return None
    item = widget.item(row, 0)
    return item.data(Qt.ItemDataRole.UserRole) if item else None


def step_title(step: Any) -> str:
    text = f"{step.idx + 1} · {step.kind or '…'}"
    if step.tool_name:
        text += f" · {step.tool_name}"
        outcome = step.tool_outcome or {}
        if outcome.get("status"):
            text += f" → {outcome['status']}"
    return text


def _block(title: str, body: str, mono: bool = True) -> str:
    style = "white-space:pre-wrap;font-family:monospace" if mono else ""
    return (
        f"<h4 style='margin-bottom:2px'>{html.escape(title)}</h4>"
        f"<div style='{style}'>{html.escape(body)}</div>"
    )


def step_html(step: Any, check: dict[str, Any] | None = None) -> str:
    """One step, all of it: prompt, raw output, tool call, permission, result, checks, timings."""
    parts = []
    if check is not None:
        ok = check.get("match", True)
        verdict = "matches the recording" if ok else f"DIVERGES: {check.get('detail', '')}"
        colour = "#166534" if ok else "#991b1b"
        parts.append(
            f"<p style='color:{colour};font-weight:600'>Replay: {html.escape(verdict)}</p>"
        )
    prompt = "\n\n".join(f"[{m.get('role')}]\n{m.get('content')}" for m in step.messages or [])
    no_call = "(none: no model call: a replayed step, or what you taught said as the answer)"
    parts.append(_block("Prompt", prompt or no_call))
    parts.append(_block("Raw output", step.raw_output or ""))
    if step.tool_name:
        args = json.dumps(step.tool_args, ensure_ascii=False, indent=2, default=str)
        parts.append(_block("Tool call", f"{step.tool_name} {args}"))
        outcome = step.tool_outcome or {}
        decision = outcome.get("decision") or "-"
        rule = outcome.get("rule") or "-"
        answer = outcome.get("answer")
        permission = f"{decision} (by {rule})" + (f"; you answered {answer}" if answer else "")
        parts.append(_block("Permission", permission, mono=False))
        parts.append(_block("Result", step.observation or ""))
    elif step.observation:
        parts.append(_block("Observation", step.observation))
    if step.error:
        parts.append(_block("Error", step.error))
    checks = getattr(step, "checks", None) or (step.action or {}).get("checks")
    if checks:
        parts.append(_block("Checks", json.dumps(checks, ensure_ascii=False, indent=2)))
    timing = (
        f"{step.prompt_tokens} prompt + {step.completion_tokens} completion tokens; "
        f"first token {step.first_token_ms:.0f} ms; {step.duration_ms:.0f} ms in all"
    )
    parts.append(_block("Timings", timing, mono=False))
    return "".join(parts)


class RunsTab(QWidget):
    filter_changed = Signal(str)
    run_selected = Signal(str)
    replay_requested = Signal(str)
    forget_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        split = QSplitter()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.filter = QComboBox()
        self.filter.addItems(RUN_FILTERS)
        self.filter.currentTextChanged.connect(self.filter_changed)
        self.runs = table(["Question", "When", "Status", "Steps", "Rating"])
        self.runs.itemSelectionChanged.connect(self._selected)
        left_layout.addWidget(self.filter)
        left_layout.addWidget(self.runs, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        self.summary = QLabel("Pick a run to see each step.")
        self.summary.setWordWrap(True)
        self.replay = QPushButton("Replay")
        self.replay.setToolTip(
            "Run it again exactly (recorded model outputs, live tools) and show the first "
            "step that differs"
        )
        self.forget = QPushButton("Forget run")
        for button in (self.replay, self.forget):
            button.setEnabled(False)
        head.addWidget(self.summary, 1)
        head.addWidget(self.replay)
        head.addWidget(self.forget)
        right_layout.addLayout(head)
        steps_split = QSplitter(Qt.Orientation.Vertical)
        self.steps = QListWidget()
        self.detail = QTextBrowser()
        steps_split.addWidget(self.steps)
        steps_split.addWidget(self.detail)
        steps_split.setSizes([140, 400])
        right_layout.addWidget(steps_split, 1)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([420, 600])
        layout.addWidget(split)
        self.replay.clicked.connect(lambda: self._emit(self.replay_requested))
        self.forget.clicked.connect(lambda: self._emit(self.forget_requested))

    def _emit(self, signal: Any) -> None:
        key = selected_key(self.runs)
        if key:
            signal.emit(key)

    def _selected(self) -> None:
        key = selected_key(self.runs)
        if key:
            self.run_selected.emit(key)

    def set_runs(self, rows: list[dict[str, Any]], ratings: dict[str, str]) -> None:
        fill(
            self.runs,
            [
                [
                    r["question"].replace("\n", " "),
                    when(r["created_at"]),
                    r["status"],
                    str(r["steps"]),
                    ratings.get(r["id"], ""),
                ]
                for r in rows
            ],
            [r["id"] for r in rows],
        )

    def show_trace(self, trace: Any) -> None:
        model = recorded_model_label(trace.model)  # not the GGUF's own general.name
        self.summary.setText(
            f"<b>{html.escape(trace.question[:120])}</b><br>"
            f"{trace.status} · {len(trace.steps)} steps · {trace.duration_ms / 1000:.1f} s · "
            f"{html.escape(model)} · prompt {html.escape(trace.prompt_version or '-')}"
        )
        self.steps.clear()
        for step in trace.steps:
            item = QListWidgetItem(step_title(step))
            self.steps.addItem(item)
        if trace.steps:
            self.steps.setCurrentRow(0)
        else:
            self.detail.setHtml("<p>No steps were recorded.</p>")

    def mark_replay(self, checks: list[dict[str, Any]], first_divergence: int | None) -> None:
        for i in range(self.steps.count()):
            item = self.steps.item(i)
            matched = first_divergence is None or i < first_divergence
            if i < len(checks) or first_divergence is not None:
                item.setBackground(
                    MATCH if matched else DIVERGED if i == first_divergence else QBrush()
                )
        if first_divergence is not None and first_divergence < self.steps.count():
            self.steps.setCurrentRow(first_divergence)


class ListTab(QWidget):
    """A table of rows, a detail view, and action buttons (experiences, lessons, prompts)."""

    selected = Signal(str)
    action = Signal(str, str)  # action name, key

    def __init__(self, headers: list[str], actions: list[tuple[str, str]], note: str) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        self.note = muted_label(note)
        layout.addWidget(self.note)
        split = QSplitter(Qt.Orientation.Vertical)
        self.table = table(headers)
        self.detail = QTextBrowser()
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setSizes([300, 200])
        layout.addWidget(split, 1)
        row = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for name, label in actions:
            button = QPushButton(label)
            button.setEnabled(False)
            button.clicked.connect(lambda _=False, n=name: self._act(n))
            self.buttons[name] = button
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        self.table.itemSelectionChanged.connect(self._selected)

    def _selected(self) -> None:
        key = selected_key(self.table)
        for button in self.buttons.values():
            button.setEnabled(key is not None and button.property("available") is not False)
        if key:
            self.selected.emit(key)

    def _act(self, name: str) -> None:
        key = selected_key(self.table)
        if key:
            self.action.emit(name, key)

    def set_available(self, name: str, available: bool) -> None:
        button = self.buttons[name]
        button.setProperty("available", available)
        if not available:
            button.setEnabled(False)
            button.setToolTip("This build's learning engine does not offer this yet.")


class LearningPage(QWidget):
    refine_requested = Signal()
    export_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        head = QHBoxLayout()
        title = QLabel("Learning")
        title.setProperty("role", "title")
        self.refine = QPushButton("Refine now")
        self.refine.setToolTip(
            "Build a better prompt from your ratings and corrections; it is adopted only if it "
            "scores at least as well and loses no correction"
        )
        self.refine_progress = QProgressBar()
        self.refine_progress.setMaximumWidth(200)
        self.refine_progress.hide()
        self.export = QPushButton("Export dataset…")
        self.export.setToolTip("Good runs and corrections as SFT or preference JSONL")
        head.addWidget(title, 1)
        head.addWidget(self.refine_progress)
        head.addWidget(self.refine)
        head.addWidget(self.export)
        layout.addLayout(head)
        self.status = muted_label()
        layout.addWidget(self.status)
        self.schedule = muted_label()  # the idle refinement: next run, last run, its result
        self.schedule.setWordWrap(True)
        layout.addWidget(self.schedule)
        self.judge = muted_label()  # who judges questions asked in other words
        self.judge.setWordWrap(True)
        layout.addWidget(self.judge)
        self.tabs = QTabWidget()
        self.runs = RunsTab()
        self.experiences = ListTab(
            ["Task", "Uses", "Successes", "Failures", "Last used"],
            [("forget", "Forget")],
            "Experiences are recorded ways of doing a task; a similar task replays them.",
        )
        self.lessons = ListTab(
            ["Lesson", "Status", "Helpful", "Harmful"],
            [("edit", "Edit…"), ("retire", "Retire"), ("forget", "Forget")],
            "Lessons are short guidelines learned from your corrections and ratings.",
        )
        self.prompts = ListTab(
            ["Version", "Created", "Status", "Score", "Why"],
            [("rollback", "Use this version")],
            "Every prompt version is kept; the diff shows what changed from the one before.",
        )
        self.tabs.addTab(self.runs, "Runs")
        self.tabs.addTab(self.experiences, "Experiences")
        self.tabs.addTab(self.lessons, "Lessons")
        self.tabs.addTab(self.prompts, "Prompt versions")
        layout.addWidget(self.tabs, 1)
        self.refine.clicked.connect(self.refine_requested)
        self.export.clicked.connect(self.export_requested)
