"""A local read/write calendar: a vdir, a folder of ``.ics`` files as khal and vdirsyncer use.

Each file holds one VCALENDAR with one event (or one series and its overrides).
``CalendarRef.location`` is the folder. A sync lists the ``*.ics`` files and re-reads the
folder only when a name, size or mtime changed. steadyhand writes its blocks as
``<block id>.ics`` with UID ``steadyhand-<block id>`` and the ``X-STEADYHAND-BLOCK`` tag,
always through a temporary file in the same folder and :func:`os.replace`, so a crash
never leaves half a file. It changes or deletes only files whose event carries the tag.

An event's etag is its file's ``<mtime_ns>-<size>``; a move or delete that names an etag
fails with :class:`~connectors.base.TransientError` when the file changed since.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import icalendar

from connectors import _ical, _readaround
from connectors._apply import apply_each
from connectors._bounds import DEFAULT_LIMITS, Budget
from connectors.base import BLOCK_PROPERTY
from worker.core.errors import CalendarUnreadable, NotOwned, PermanentError, TransientError
from worker.core.model import (
    UTC,
    Applied,
    Block,
    BlockChange,
    CalendarRef,
    Event,
    SyncLimits,
    SyncResult,
    SyncState,
    TimeRange,
    Transparency,
    details_digest,
)

logger = logging.getLogger(__name__)

UID_PREFIX = "steadyhand-"
PRODID = "-//steadyhand//vdir//EN"


@dataclass(frozen=True, slots=True)
class _Found:
    """The file holding an event, as read."""

    path: Path
    stat: os.stat_result
    calendars: list[icalendar.Calendar]
    uid: str
    tagged: bool


def etag_of(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}-{st.st_size}"


def file_name(block_id: str) -> str:
    """``<block id>.ics`` with anything unsafe in a file name percent-quoted."""
    name = quote(block_id, safe="@-_.")
    return f"_{name}.ics" if name.startswith(".") else f"{name}.ics"


class VdirCalendar:
    """A folder of ``.ics`` files, read and written in place (docs/contract.md)."""

    kind = "vdir"
    read_only = False
    #: Folders may be read in parallel (base.ParallelReads): a sync keeps no state here.
    parallel_reads = 64

    def __init__(self, limits: SyncLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits  # bounds expansion, per calendar across its files

    # -- the contract --------------------------------------------------------------
    def sync(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        folder = _folder(cal.location)
        files = _listing(folder)
        digest = hashlib.sha256()
        contents: dict[Path, bytes | None] = {}
        for path, st in files:
            digest.update(f"{path.name}\0{st.st_ino}\0{etag_of(st)}\n".encode())
            if _ical.racy(st) and st.st_size <= self._limits.max_bytes:
                # too fresh for its mtime to vouch for it: add its content
                contents[path] = _read(path)
                digest.update(hashlib.sha256(contents[path] or b"").digest())
        fingerprint = digest.hexdigest()
        if state is not None and state.window == window and state.fingerprint == fingerprint:
            logger.info("vdir sync %s: unchanged, %d files", cal.key, len(files))
            return SyncResult(events=(), removed=(), state=state, full=False, unchanged=True)
        _ical.zone_of(cal, cal.location)  # a wrong zone fails the calendar, not each file
        found: dict[str, Event] = {}
        skipped: list[str] = []
        budget, notes = Budget(self._limits, sources=len(files)), _readaround.Notes()
        for path, st in files:
            try:  # one file that cannot be read is skipped and named; the others are read
                if st.st_size > self._limits.max_bytes:
                    raise _TooLarge(self._limits.max_bytes)
                data = contents[path] if path in contents else _read(path)
                if data is None:
                    continue  # deleted since the listing; the next sync sees the new listing
                calendars = _ical.parse(data, str(path), salvage_events=True)
                events = _ical.events_between(
                    calendars, cal, window, str(path), etag_of(st), budget, notes
                )
            except Exception as exc:  # contained to its file, which is named below
                skipped.append(path.name)
                logger.warning(
                    "vdir sync %s: skipped unreadable file %s (%s)", cal.key, path.name, _why(exc)
                )
                continue
            for event in events:
                found[event.id] = _with_details(event, calendars) if event.owned_block_id else event
        if skipped and len(skipped) == len(files):  # nothing readable: the calendar failed
            raise _ical.unreadable(
                str(folder),
                f"none of its {len(files)} .ics files can be read (first: {skipped[0]})",
                "fix or remove the broken files; the events stored before are kept",
            )
        logger.info("vdir sync %s: parsed, %d events, %d files", cal.key, len(found), len(files))
        new_state = SyncState(fingerprint=fingerprint, window=window)
        return SyncResult(
            events=tuple(found.values()),
            removed=(),
            state=new_state,
            full=True,
            truncated="; ".join(note for note in (_skipped_note(skipped), budget.truncated) if note)
            or None,
            notes=notes.read_notes(),
        )

    def describe(self, cal: CalendarRef, event_id: str) -> str | None:
        """An event's description, read now from its file and not kept."""
        tz = _ical.zone_of(cal, cal.location)
        for path, _ in _listing(_folder(cal.location)):
            data = _read(path)
            if data and event_id.rpartition("@")[0 if "@" in event_id else 2].encode() in data:
                found = _ical.description(
                    _ical.parse(data, str(path), salvage_events=True), event_id, tz
                )
                if found is not None:
                    return found
        return None

    def apply(self, cal: CalendarRef, changes: Sequence[BlockChange]) -> list[Applied]:
        folder = _folder(cal.location)
        return apply_each(
            changes,
            create=lambda change: self._create(folder, change),
            move=lambda change: self._move(folder, change),
            delete=lambda change: self._delete(folder, change),
            what=f"vdir apply {cal.key}",
            log=logger,
        )

    # -- writes --------------------------------------------------------------------
    def _create(self, folder: Path, change: BlockChange) -> Applied:
        block = change.block
        uid = f"{UID_PREFIX}{block.id}"
        path = folder / file_name(block.id)
        previous = _load(path)
        sequence = 0
        if previous is not None:  # a retried create: overwrite our own file, nothing else
            if not previous.tagged:
                raise _not_owned(path, previous.uid)
            sequence = _sequence(previous) + 1
        calendar = icalendar.Calendar()
        calendar.add("PRODID", PRODID)
        calendar.add("VERSION", "2.0")
        vevent = icalendar.Event()
        vevent.add("UID", uid)
        _set_block(vevent, block, sequence)
        calendar.add_component(vevent)
        st = _write(path, calendar.to_ical(), previous.stat if previous else None)
        return Applied(change, uid, etag_of(st))

    def _move(self, folder: Path, change: BlockChange) -> Applied:
        event_id = change.event_id or f"{UID_PREFIX}{change.block.id}"
        found = _owned(folder, event_id, change)
        if found is None:
            raise TransientError(
                f"{folder}: event {event_id} no longer exists (changed since it was read)"
            )
        for calendar in found.calendars:
            for vevent in calendar.walk("VEVENT"):
                if str(vevent.get("UID")) == found.uid and "RECURRENCE-ID" not in vevent:
                    _set_block(vevent, change.block, _sequence(found) + 1)
        data = b"".join(c.to_ical() for c in found.calendars)
        st = _write(found.path, data, found.stat)
        return Applied(change, found.uid, etag_of(st))

    def _delete(self, folder: Path, change: BlockChange) -> Applied:
        event_id = change.event_id or f"{UID_PREFIX}{change.block.id}"
        found = _owned(folder, event_id, change)
        if found is None:
            return Applied(change, event_id)  # already gone: done
        others = False
        for calendar in found.calendars:
            kept = [
                c
                for c in calendar.subcomponents
                if c.name != "VEVENT" or str(c.get("UID")) != found.uid
            ]
            others = others or any(c.name == "VEVENT" for c in kept)
            calendar.subcomponents = kept
        if others:  # not one event per file: keep the other events
            _write(found.path, b"".join(c.to_ical() for c in found.calendars), found.stat)
        else:
            try:
                found.path.unlink(missing_ok=True)
            except OSError as exc:
                raise _cannot_write(found.path, exc) from None
        return Applied(change, found.uid)


# -- helpers -------------------------------------------------------------------------
class _TooLarge(Exception):
    """A file over ``sync.max_bytes``: skipped unread."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"larger than {cap // 1024**2} MB (sync.max_bytes)")


def _why(exc: Exception) -> str:
    """Why a file was skipped, in words that never quote the file's content."""
    if isinstance(exc, _TooLarge):
        return str(exc)
    if isinstance(exc, CalendarUnreadable) and "cannot be read (" in str(exc):
        return "cannot be read: check the file's permissions"
    if isinstance(exc, CalendarUnreadable):
        return "not a readable iCalendar file"
    return f"not a readable iCalendar file ({type(exc).__name__})"


def _skipped_note(names: Sequence[str]) -> str | None:
    """``SyncResult.truncated`` for skipped files: one line naming the first few."""
    if not names:
        return None
    shown = ", ".join(_readaround.one_line(n, 80) for n in names[:3])
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    noun = "file" if len(names) == 1 else "files"
    return f"skipped {len(names)} unreadable {noun}: {shown}{more}"


def _with_details(event: Event, calendars: Sequence[icalendar.Calendar]) -> Event:
    """A block as read, with the digest of its description and location (a user's edit
    of either makes the block theirs; steadyhand writes neither)."""
    uid = event.series_id or event.id
    for calendar in calendars:
        for vevent in calendar.walk("VEVENT"):
            if str(vevent.get("UID")) == uid and "RECURRENCE-ID" not in vevent:
                texts = (_ical.prop_text(vevent, n) for n in ("DESCRIPTION", "LOCATION"))
                return replace(event, details=details_digest(*texts))
    return event


def _folder(location: str) -> Path:
    folder = Path(location)
    if not folder.exists():
        raise _ical.unreadable(
            location,
            "the folder does not exist",
            "create it (mkdir) or fix the vdir path in steadyhand.yaml",
        )
    if not folder.is_dir():
        raise _ical.unreadable(
            location, "is a file, not a folder", "for a single .ics file use `ics:` instead"
        )
    return folder


def _listing(folder: Path) -> list[tuple[Path, os.stat_result]]:
    try:
        with os.scandir(folder) as entries:
            files = [
                (Path(entry.path), entry.stat())
                for entry in entries
                if entry.name.lower().endswith(".ics")
                and not entry.name.startswith(".")
                and entry.is_file()
            ]
    except OSError as exc:
        raise _ical.unreadable(
            str(folder), f"cannot list the folder ({exc.strerror or exc})", "check its permissions"
        ) from None
    return sorted(files)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _ical.unreadable(
            str(path), f"cannot be read ({exc.strerror or exc})", "check the file's permissions"
        ) from None


def _load(path: Path, uid: str | None = None) -> _Found | None:
    """The file at ``path`` if it holds an event (with ``uid``, when given)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    data = _read(path)
    if data is None:
        return None
    calendars = _ical.parse(data, str(path))
    for calendar in calendars:
        for vevent in calendar.walk("VEVENT"):
            this = str(vevent.get("UID"))
            if uid is not None and uid != this and not uid.startswith(f"{this}@"):
                continue
            tagged = _ical.prop_text(vevent, BLOCK_PROPERTY) is not None
            return _Found(path, st, calendars, this, tagged)
    return None


def _find(folder: Path, event_id: str) -> _Found | None:
    """The file holding ``event_id``: by steadyhand's own file name first, then by search."""
    if event_id.startswith(UID_PREFIX):
        found = _load(folder / file_name(event_id[len(UID_PREFIX) :]), event_id)
        if found is not None:
            return found
    for path, _ in _listing(folder):
        try:
            found = _load(path, event_id)
        except CalendarUnreadable:
            continue  # a broken file is not ours to change; sync reports it
        if found is not None:
            return found
    return None


def _owned(folder: Path, event_id: str, change: BlockChange) -> _Found | None:
    """The file of ``event_id`` after checking the tag and the etag; None when it is gone."""
    found = _find(folder, event_id)
    if found is None:
        return None
    if not found.tagged:
        raise _not_owned(found.path, event_id)
    if change.etag is not None and change.etag != etag_of(found.stat):
        raise TransientError(f"{found.path}: event {event_id} changed since it was read")
    return found


def _not_owned(path: Path, event_id: str) -> NotOwned:
    return NotOwned(
        f"{path}: event {event_id} does not carry {BLOCK_PROPERTY}; "
        "steadyhand changes only its own blocks"
    )


def _sequence(found: _Found) -> int:
    for calendar in found.calendars:
        for vevent in calendar.walk("VEVENT"):
            with contextlib.suppress(TypeError, ValueError):
                return int(vevent.get("SEQUENCE", 0))
    return 0


def _set_block(vevent: Any, block: Block, sequence: int) -> None:
    for name in ("DTSTAMP", "LAST-MODIFIED", "DTSTART", "DTEND", "DURATION", "SUMMARY"):
        vevent.pop(name, None)
    for name in ("TRANSP", "SEQUENCE", BLOCK_PROPERTY):
        vevent.pop(name, None)
    now = datetime.now(UTC).replace(microsecond=0)
    vevent.add("DTSTAMP", now)
    vevent.add("LAST-MODIFIED", now)
    vevent.add("DTSTART", block.start.astimezone(UTC))
    vevent.add("DTEND", block.end.astimezone(UTC))
    vevent.add("SUMMARY", block.title)
    free = block.transparency is Transparency.FREE
    vevent.add("TRANSP", "TRANSPARENT" if free else "OPAQUE")
    if sequence:
        vevent.add("SEQUENCE", sequence)
    vevent.add(BLOCK_PROPERTY, block.id)


def _write(path: Path, data: bytes, previous: os.stat_result | None) -> os.stat_result:
    """Write ``data`` to ``path`` atomically; the result's etag differs from ``previous``."""
    try:
        if previous is not None:
            mode = stat.S_IMODE(previous.st_mode)
        else:
            mode = 0o644 & stat.S_IMODE(path.parent.stat().st_mode)
        fd, tmp = tempfile.mkstemp(prefix=".steadyhand-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        st = path.stat()
        if previous is not None and etag_of(st) == etag_of(previous):  # same size, same tick
            os.utime(path, ns=(st.st_atime_ns, previous.st_mtime_ns + 1))
            st = path.stat()
        _fsync_folder(path.parent)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    return st


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _cannot_write(path: Path, exc: OSError) -> PermanentError:
    return PermanentError(
        f"{path}: cannot write ({exc.strerror or exc}) — "
        "check the folder's permissions and free space"
    )


def import_ics(source: Path, folder: Path) -> int:
    """Split the iCalendar file ``source`` into a vdir at ``folder``: one file per UID
    (a series and its overrides stay together), each with the source's time zones.
    Returns the number of files written. Used to give the demo a writable copy."""
    calendars = _ical.parse(source.read_bytes(), str(source))
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for calendar in calendars:
        zones = [c for c in calendar.subcomponents if c.name == "VTIMEZONE"]
        by_uid: dict[str, list[Any]] = {}
        for component in calendar.walk("VEVENT"):
            by_uid.setdefault(str(component.get("UID", f"no-uid-{written}")), []).append(component)
        for uid, components in by_uid.items():
            out = icalendar.Calendar()
            out.add("PRODID", PRODID)
            out.add("VERSION", "2.0")
            for zone in zones:
                out.add_component(zone)
            for component in components:
                out.add_component(component)
            name = hashlib.sha256(uid.encode()).hexdigest()[:24] + ".ics"
            _write(folder / name, out.to_ical(), None)
            written += 1
    return written
