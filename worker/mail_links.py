"""The links an email carries, as its templates see them (``links``).

Glossary
--------
links
    The template value of every email: ``unsubscribe`` (the List-Unsubscribe URL; a
    bundle's opts out of every email) and ``preferences``, and a program's own answer
    links: a reflection's ``scores``, ``note`` and ``journal``; a pulse's ``answer`` and
    ``questions``; a check-in's ``form``; a partners email's ``commitments``; a follow-up's
    ``share``. Each is None (or empty) without a secret key or without ``web.base_url``:
    links fail closed.
now
    Tokens are stamped with the send moment (:class:`worker.links.Links`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from worker.links import Links, Purpose

#: ``links`` of an email without web links (no secret key, or no ``web.base_url``).
NO_LINKS: Mapping[str, Any] = {"unsubscribe": None, "preferences": None}
#: The words beside a reflection's scores (the others have none).
SCORE_LABELS = {1: "rough", 5: "great"}


def link_values(
    links: Links | None,
    email_address: str,
    program: str,
    period: str,
    now: datetime,
    payload: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``links`` value of a ``program`` email's templates: ``unsubscribe`` (the
    List-Unsubscribe URL, which opts a bundle out of every email) and ``preferences``, and
    the program's own answer links (:func:`own_links`). Each is None
    without ``links`` (no secret key: links fail closed) or without its base URL. Tokens
    are stamped with ``now``, the send moment."""
    values: dict[str, Any] = dict(NO_LINKS)
    if links is not None:
        values["unsubscribe"] = links.unsubscribe_link(email_address, program, period, now)
        values["preferences"] = links.url(Purpose.PREFERENCES, email_address, program, period, now)
    values.update(own_links(links, email_address, program, period, now, payload or {}))
    return values


def own_links(
    links: Links | None,
    email_address: str,
    program: str,
    period: str,
    now: datetime,
    payload: Mapping[str, Any],
) -> dict[str, Any]:
    """A program's own answer links: a reflection's (:func:`reflection_links`), a
    check-in's ``form``, and a partners email's ``commitments`` (``{id: {done, still}}``
    for each of the recipient's own commitments in ``payload``). None or empty without
    ``links``."""
    if program == "reflection":
        return reflection_links(links, email_address, period, now)
    if program == "pulse":
        return pulse_links(links, email_address, period, now, payload.get("questions", []))
    if program == "checkin":
        form = links.url(Purpose.ANSWER, email_address, program, period, now) if links else None
        return {"form": form}
    if program == "partners":
        made: dict[str, Any] = {}
        for c in payload.get("own", []) if links else []:
            assert links is not None
            made[c["id"]] = {
                status: links.url(
                    Purpose.ANSWER,
                    email_address,
                    program,
                    c.get("period") or c["day"],
                    now,
                    line=c["line"],
                    status=status,
                )
                for status in ("done", "still")
            }
        return {"commitments": made}
    if program == "followup":
        return {"share": followup_share_link(links, email_address, period, now, payload)}
    return {}


def followup_share_link(
    links: Links | None, email_address: str, period: str, now: datetime, payload: Mapping[str, Any]
) -> str | None:
    """A follow-up's "choose which of these are yours to share" link: only when it offers
    sharing (``share``), has commitments and links exist. The commitments are not in it:
    the page reads them from the store (kept there when the email is sent)."""
    items = [str(c) for c in payload.get("commitments") or []]
    if links is None or not payload.get("share") or not items:
        return None
    return links.url(Purpose.ANSWER, email_address, "followup", period, now)


def reflection_links(
    links: Links | None, email_address: str, day: str, now: datetime
) -> dict[str, Any]:
    """A reflection's own links for ``day`` (an ISO date): ``scores`` (1 rough … 5 great,
    each ``{score, label, url}``: the answer page with that score chosen, not yet saved),
    ``note`` (the answer page) and ``journal`` ("Your last 30 days"); empty without links."""
    note = links.url(Purpose.ANSWER, email_address, "reflection", day, now) if links else None
    if links is None or note is None:
        return {"scores": [], "note": None, "journal": None}
    scores = [
        {
            "score": n,
            "label": SCORE_LABELS.get(n, ""),
            "url": links.url(Purpose.ANSWER, email_address, "reflection", day, now, score=n),
        }
        for n in range(1, 6)
    ]
    journal = links.url(Purpose.JOURNAL, email_address, "reflection", day, now)
    return {"scores": scores, "note": note, "journal": journal}


def pulse_links(
    links: Links | None,
    email_address: str,
    week: str,
    now: datetime,
    questions: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """A pulse's own links for ``week``: ``answer`` (the page) and ``questions`` (per
    question id, each score ``{score, url}``: the page with that score chosen, not yet
    saved); empty without links."""
    page = links.url(Purpose.ANSWER, email_address, "pulse", week, now) if links else None
    if links is None or page is None:
        return {"answer": None, "questions": {}}
    return {
        "answer": page,
        "questions": {
            str(q["id"]): [
                {
                    "score": n,
                    "url": links.url(
                        Purpose.ANSWER, email_address, "pulse", week, now, q=q["id"], score=n
                    ),
                }
                for n in range(int(q["low"]), int(q["high"]) + 1)
            ]
            for q in questions
        },
    }


def with_links(
    payload: Mapping[str, Any],
    links: Links | None,
    email_address: str,
    program: str,
    period: str,
    now: datetime,
) -> dict[str, Any]:
    """``payload`` with its ``links`` (:func:`link_values`) and ``unsubscribe_url`` (the
    List-Unsubscribe URL, which the footers show). A bundle's parts get their own answer
    links (the period is the last part of a part's key)."""
    values = link_values(links, email_address, program, period, now, payload)
    out = {**payload, "links": values, "unsubscribe_url": values["unsubscribe"]}
    if program == "bundle":
        out["parts"] = [
            {
                **part,
                "payload": {
                    **part["payload"],
                    "links": own_links(
                        links,
                        email_address,
                        str(part.get("program")),
                        str(part["key"]).rsplit(":", 1)[-1],
                        now,
                        part["payload"],
                    ),
                },
            }
            for part in payload.get("parts", [])
        ]
    return out
