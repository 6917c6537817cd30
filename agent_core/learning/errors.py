"""Errors of the learning loop meant for the user (each says what to do next)."""

from __future__ import annotations

from models.errors import JackdawError


class CorrectionNotFoundError(JackdawError):
    hint = "List the corrections with `jackdaw corrections list`."


class ExperienceNotFoundError(JackdawError):
    hint = "List the experiences with `jackdaw experiences list`."


class LessonNotFoundError(JackdawError):
    hint = "List the lessons with `jackdaw lessons list`."


class PromptVersionNotFoundError(JackdawError):
    hint = "List the prompt versions with `jackdaw prompts list`."


class RollbackRefusedError(JackdawError):
    hint = "Roll back to a version that was in force before (status adopted or default)."


class FeedbackError(JackdawError):
    hint = "Rate or correct a finished run: `jackdaw traces list` shows them."


class RefinementBusyError(JackdawError):
    hint = "A refinement is already running; wait for it to finish."
