"""The email programs, one module each, and the one place they are registered.

A program is a module here (its ``NAME``, ``PRIORITY``, ``PREVIEW``, ``due(...)`` and
``context(...)``: :mod:`worker.programs.base`) plus its two templates, listed in
:data:`PROGRAMS`; the cycle (:mod:`worker.cycle.decide`), ``emails preview`` and the
template check (``config check``) all read that list.

* ``reflection`` (:mod:`.reflection`): a person's day, at its end;
* ``recognition`` (:mod:`.recognition`): weekly, to a leader, whom to thank for what;
* ``recognize`` (:mod:`.recognize`): a leader's own note to a member, by hand;
* ``followup`` (:mod:`.followup`): after a 1:1, to both people;
* ``overload`` (:mod:`.overload`): the coming day or week is overloaded;
* ``digest`` (:mod:`.digest`): weekly team load as an email-safe heat map;
* ``pulse`` (:mod:`.pulse`): the pulse check, weekly or every two weeks;
* ``checkin`` (:mod:`.checkin`): each working morning, priorities, a concern, a blocker;
* ``checkin_blockers`` (:mod:`.checkin_blockers`): the same day, to a leader, the blockers
  shared with them;
* ``checkin_digest`` (:mod:`.checkin_digest`): the team's shared check-ins, to who shared;
* ``partners`` (:mod:`.partners`): weekly, a partner's commitments and one's own;
* ``bundle`` (:mod:`.bundle`): several of those in one email.

Pure: every context is a dict of plain ``str``/``int``/``float``/``bool``/``None``/
``list``/``dict`` values, never a model object, settings or a client (docs/privacy.md):
the templates run in a sandbox and see only this. templates/README.md lists the values
per program. Names are shown with their whitespace collapsed (a name with a line break
cannot break the ``Subject:`` line); times are shown in the recipient's own zone.
"""

from __future__ import annotations

from collections.abc import Mapping

from worker.core.wording import first_name
from worker.programs import (
    bundle,
    checkin,
    checkin_blockers,
    checkin_digest,
    digest,
    followup,
    overload,
    partners,
    pulse,
    recognition,
    recognize,
    reflection,
)
from worker.programs.base import Program
from worker.programs.followup import AGENDA, PROMPTS, agenda_topic, commitments, is_one_on_one

__all__ = [
    "AGENDA",
    "PREVIEWED",
    "PROGRAMS",
    "PROMPTS",
    "Program",
    "agenda_topic",
    "commitments",
    "digest_context",
    "first_name",
    "followup_context",
    "is_one_on_one",
    "overload_context",
    "recognition_context",
    "recognize_context",
    "reflection_context",
]

_ALL: tuple[Program, ...] = (
    reflection,
    recognition,
    recognize,
    followup,
    overload,
    digest,
    pulse,
    checkin,
    checkin_blockers,
    checkin_digest,
    partners,
    bundle,
)
#: Every email program by name: the one registry.
PROGRAMS: Mapping[str, Program] = {p.NAME: p for p in _ALL}
#: The programs ``emails preview`` renders, in the order it lists them.
PREVIEWED: tuple[str, ...] = tuple(p.NAME for p in _ALL if p.PREVIEW)

# The contexts under their former names.
reflection_context = reflection.context
recognition_context = recognition.context
recognize_context = recognize.context
followup_context = followup.context
overload_context = overload.context
digest_context = digest.context
