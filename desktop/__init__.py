"""Jackdaw's desktop app (PySide6): views hold layout, controllers wire signals to services.

This package is the only place Qt is imported, and nothing outside it imports it. All long
work (model calls, indexing, replay, refinement) runs in :mod:`desktop.tasks` workers.
(PySide6-Essentials 6.12.0 leaks references to None on Python 3.11 until the interpreter
aborts; pyproject.toml keeps it below 6.12.)
"""
