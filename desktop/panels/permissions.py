"""Permissions: the rules in force (revoke any) and the audit log of tool calls (filterable)."""

from __future__ import annotations

import json
import time
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop import seams
from desktop.tasks import TaskRunner, error_text
from desktop.widgets import muted_label, short_path

AUDIT_LIMIT = 500


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().hide()
    table.setAlternatingRowColors(True)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def rule_words(rule: Any) -> str:
    scope = rule.scope
    parts = [scope.tool]
    if scope.path_prefix:
        parts.append(f"in {short_path(scope.path_prefix)}")
    parts += [f"when {k} matches {v}" for k, v in scope.arg_patterns.items()]
    return " ".join(parts)


class PermissionsPage(QWidget):
    revoke_requested = Signal(str)
    refresh_requested = Signal()
    filter_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        title = QLabel("Permission rules")
        title.setProperty("role", "title")
        layout.addWidget(title)
        layout.addWidget(
            muted_label(
                "Tools that change files, run code or use the network ask first. "
                "“Always allow” answers become rules here; revoke one and the tool asks again."
            )
        )
        self.rules = _table(["Rule", "Lifetime", "Allows", "Since"])
        self.rules.setMaximumHeight(180)
        layout.addWidget(self.rules)
        row = QHBoxLayout()
        self.revoke = QPushButton("Revoke")
        self.revoke.setEnabled(False)
        self.revoke.clicked.connect(self._revoke)
        self.rules.itemSelectionChanged.connect(
            lambda: self.revoke.setEnabled(bool(self.rules.selectedItems()))
        )
        self.rules_note = muted_label()
        row.addWidget(self.revoke)
        row.addWidget(self.rules_note, 1)
        layout.addLayout(row)

        audit_title = QLabel("Audit log")
        audit_title.setProperty("role", "title")
        layout.addSpacing(8)
        layout.addWidget(audit_title)
        filters = QHBoxLayout()
        self.audit_filter = QLineEdit()
        self.audit_filter.setPlaceholderText("Filter by tool, status, rule or arguments")
        self.audit_filter.setClearButtonEnabled(True)
        self.decision = QComboBox()
        self.decision.addItems(["Any decision", "allowed", "denied"])
        self.refresh = QPushButton("Refresh")
        self.refresh.clicked.connect(self.refresh_requested)
        self.audit_filter.textChanged.connect(self.filter_changed)
        self.decision.currentIndexChanged.connect(self.filter_changed)
        filters.addWidget(self.audit_filter, 1)
        filters.addWidget(self.decision)
        filters.addWidget(self.refresh)
        layout.addLayout(filters)
        self.audit = _table(["When", "Tool", "Status", "Decision", "Rule", "Answer", "Arguments"])
        layout.addWidget(self.audit, 1)
        self.audit_note = muted_label()
        layout.addWidget(self.audit_note)

    def _revoke(self) -> None:
        item = self.rules.item(self.rules.currentRow(), 0)
        if item is not None:
            self.revoke_requested.emit(item.text())

    def set_rules(self, rules: list[Any]) -> None:
        self.rules.setRowCount(0)
        for rule in rules:
            r = self.rules.rowCount()
            self.rules.insertRow(r)
            for c, text in enumerate(
                [rule.id, str(rule.lifetime), rule_words(rule), _when(rule.created_at)]
            ):
                self.rules.setItem(r, c, QTableWidgetItem(text))
        self.rules_note.setText("" if rules else "No rules yet: every such tool call asks.")

    def set_audit(self, entries: list[Any]) -> None:
        self.audit.setRowCount(0)
        for e in entries:
            r = self.audit.rowCount()
            self.audit.insertRow(r)
            args = json.dumps(e.arguments, ensure_ascii=False, default=str)
            values = [
                _when(e.created_at),
                e.tool,
                e.status,
                e.decision or "-",
                e.rule or "-",
                e.answer or "-",
                args,
            ]
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c == 6:
                    item.setToolTip(e.observation or args)
                if c == 3 and e.decision == "deny":
                    item.setForeground(Qt.GlobalColor.darkRed)
                self.audit.setItem(r, c, item)


def matches(entry: Any, text: str, decision: str) -> bool:
    if decision == "allowed" and entry.decision != "allow":
        return False
    if decision == "denied" and entry.decision == "allow":
        return False
    if not text:
        return True
    hay = " ".join(
        str(x)
        for x in (
            entry.tool,
            entry.status,
            entry.rule,
            entry.answer,
            entry.decision,
            json.dumps(entry.arguments, ensure_ascii=False, default=str),
        )
    ).lower()
    return all(word in hay for word in text.lower().split())


class PermissionsController(QObject):
    def __init__(self, services: Any, page: PermissionsPage, tasks: TaskRunner) -> None:
        super().__init__(page)
        self.services = services
        self.page = page
        self.tasks = tasks
        self.entries: list[Any] = []
        page.revoke_requested.connect(self.revoke)
        page.refresh_requested.connect(self.refresh)
        page.filter_changed.connect(self._apply_filter)

    def refresh(self) -> None:
        def load() -> tuple[list[Any], list[Any] | None]:
            executor = seams.tool_executor(self.services)
            audit = executor.audit.recent(AUDIT_LIMIT) if executor.audit is not None else None
            return executor.policy.rules(), audit

        self.tasks.run(load, on_done=self._show, on_error=self._failed, name="permissions")

    def _show(self, result: tuple[list[Any], list[Any] | None]) -> None:
        rules, audit = result
        self.page.set_rules(rules)
        if audit is None:
            self.entries = []
            self.page.audit_note.setText("This build keeps no audit log.")
        else:
            self.entries = audit
        self._apply_filter()

    def _apply_filter(self) -> None:
        text = self.page.audit_filter.text().strip()
        decision = self.page.decision.currentText()
        shown = [e for e in self.entries if matches(e, text, decision)]
        self.page.set_audit(shown)
        if self.entries:
            self.page.audit_note.setText(f"{len(shown)} of the last {len(self.entries)} tool calls")
        elif not self.page.audit_note.text():
            self.page.audit_note.setText("No tool calls yet.")

    def revoke(self, rule_id: str) -> None:
        def work() -> bool:
            return bool(seams.tool_executor(self.services).policy.revoke(rule_id))

        self.tasks.run(work, on_done=lambda _: self.refresh(), on_error=self._failed, serial=True)

    def _failed(self, exc: BaseException) -> None:
        self.page.rules_note.setText(error_text(exc))
