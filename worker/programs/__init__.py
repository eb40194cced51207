"""The email programs' contexts (the module is :mod:`worker.programs.digest` for now,
moved whole so its history follows; it is split into one module per program next)."""

from __future__ import annotations

from worker.programs.digest import (
    AGENDA,
    PROMPTS,
    agenda_topic,
    commitments,
    digest_context,
    first_name,
    followup_context,
    is_one_on_one,
    overload_context,
    recognition_context,
    recognize_context,
)

__all__ = [
    "AGENDA",
    "PROMPTS",
    "agenda_topic",
    "commitments",
    "digest_context",
    "first_name",
    "followup_context",
    "is_one_on_one",
    "overload_context",
    "recognition_context",
    "recognize_context",
]
