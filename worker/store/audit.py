"""The audit log: one row per thing steadyhand did or failed to do (who, to whom, what),
and the views of it that doctor and the protect commands read."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from worker.store.tables import _dt, _ts, audit_log


class AuditQueries:
    """The audit part of :class:`worker.store.Store`."""

    engine: Engine

    def audit(
        self,
        action: str,
        now: datetime,
        *,
        actor: str = "steadyhand",
        person: str | None = None,
        subject: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(audit_log).values(
                    at_ts=_ts(now),
                    actor=actor,
                    person=person,
                    action=action,
                    subject=subject,
                    detail=json.dumps(detail or {}, sort_keys=True, default=str),
                )
            )

    def recent_failures(self, action: str, limit: int = 500) -> list[tuple[str, str, str, int]]:
        """``(person, subject, last error, times)`` of the latest ``limit`` audit entries
        of ``action`` (e.g. ``decide_failed``), newest first, one per person and subject."""
        query = (
            select(audit_log.c.person, audit_log.c.subject, audit_log.c.detail)
            .where(audit_log.c.action == action)
            .order_by(audit_log.c.id.desc())
            .limit(limit)
        )
        found: dict[tuple[str, str], list[Any]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                key = (r.person or "", r.subject or "")
                if key not in found:
                    error = json.loads(r.detail or "{}").get("error", "")
                    found[key] = [str(error), 0]
                found[key][1] += 1
        return [(p, s, e, n) for (p, s), (e, n) in found.items()]

    def audit_entries(self, person: str | None = None) -> list[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.id)
        if person:
            query = query.where(audit_log.c.person == person)
        with self.engine.connect() as conn:
            return [_audit_from(r) for r in conn.execute(query)]

    def audit_since(self, action: str, since: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """The latest ``limit`` entries of ``action`` (e.g. ``dropped``) at or after
        ``since``, newest first, as :meth:`audit_entries` gives them."""
        query = (
            select(audit_log)
            .where(audit_log.c.action == action, audit_log.c.at_ts >= _ts(since))
            .order_by(audit_log.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_audit_from(r) for r in conn.execute(query)]


def _audit_from(row: Any) -> dict[str, Any]:
    return {
        "at": _dt(row.at_ts),
        "actor": row.actor,
        "person": row.person,
        "action": row.action,
        "subject": row.subject,
        "detail": json.loads(row.detail or "{}"),
    }
