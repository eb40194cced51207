"""What ``config check`` looks at beyond a valid file: whether the config can do anything.

A config with no people, an account of a kind not available yet, and each person's
``ics:`` file and ``vdir:`` folder as they are on disk now. ``sync`` would fail on each
of these; other commands do not look (a calendar in trouble fails alone when it is read).

What is wrong for good is a problem (exit 2): a kind not available yet, a folder where
a file belongs or the reverse, a path that cannot be read. What may appear later is a
warning (exit 0): a missing ``.ics`` file (another tool exports or syncs it there) or
``vdir`` folder (``vdirsyncer discover`` creates it; steadyhand does not). So is a config
with no people: valid, every command runs on it, and it does nothing. Feed URLs are not
fetched.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from connectors.registry import NOT_YET
from worker.config.reader import YamlMap
from worker.config.values import _CONTROL, _shown
from worker.core.errors import Problem

if TYPE_CHECKING:
    from worker.config.problems import _Locator

#: How ``ics:`` tells a feed from a file (the same test as its validator).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")

NO_PEOPLE = ("no people: steadyhand has nothing to do", "add people: (see config/example.yaml)")


def problems(
    tree: YamlMap, locate: _Locator, base_dir: Path
) -> tuple[list[Problem], list[Problem]]:
    """``(problems, warnings)`` of the config ``tree`` whose file is in ``base_dir``."""
    found: list[Problem] = []
    unsure: list[Problem] = []
    people = tree.get("people")
    if "people" not in tree or (isinstance(people, list) and not people):
        unsure.append(Problem(*NO_PEOPLE, locate.file, locate.line(("people",))))
    accounts = tree.get("accounts")
    for i, account in enumerate(accounts if isinstance(accounts, list) else []):
        kind = account.get("kind") if isinstance(account, Mapping) else None
        if isinstance(kind, str) and kind in NOT_YET:
            found.append(locate.problem(("accounts", i, "kind"), *NOT_YET[kind]))
    for i, person in enumerate(people if isinstance(people, list) else []):
        calendar = person.get("calendar") if isinstance(person, Mapping) else None
        if not isinstance(calendar, Mapping):
            continue
        for key in ("ics", "vdir"):
            value = calendar.get(key)
            if not isinstance(value, str) or not value or _CONTROL.search(value):
                continue  # not a path: the schema says so
            if key == "ics" and _URL.match(value):
                continue  # a feed: read at sync, not here
            said = _on_disk(key, value, base_dir)
            if said is not None:
                problem = locate.problem(("people", i, "calendar", key), said[1], said[2])
                (found if said[0] else unsure).append(problem)
    return found, unsure


def _on_disk(key: str, value: str, base_dir: Path) -> tuple[bool, str, str] | None:
    """What is wrong with the ``ics:`` file or ``vdir:`` folder ``value`` now, as
    ``(for good, what, fix)``; None when sync can read it."""
    try:
        expanded = Path(value).expanduser()
    except RuntimeError as exc:  # ~nobody/…
        return True, f"the path {_shown(value)} cannot be resolved ({exc})", "write it out in full"
    # The kernel follows links and ".." as Settings.path's resolve() does, without its cost
    # per path (100,000 people: 4 s); the path is said tidied, not resolved.
    joined = base_dir / expanded
    path = Path(os.path.normpath(joined))
    try:
        found = os.stat(joined)
    except FileNotFoundError:
        if key == "vdir":
            return (
                False,
                f"the folder {path} does not exist yet",
                "sync fails for this calendar until it does (steadyhand does not create it): "
                "`vdirsyncer discover` or mkdir creates it, or fix the path",
            )
        return (
            False,
            f"the file {path} does not exist yet",
            "sync fails for this calendar until it does: export or sync the calendar there, "
            "or fix the path",
        )
    except NotADirectoryError:
        return True, f"{path} cannot exist: a part of the path is a file", "fix the path"
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return True, f"{path} cannot be read ({reason})", _PERMISSIONS
    if key == "ics" and stat.S_ISDIR(found.st_mode):
        return True, f"{path} is a folder, not an .ics file", "for a folder of .ics files use vdir:"
    if key == "vdir" and not stat.S_ISDIR(found.st_mode):
        return True, f"{path} is a file, not a folder", "for a single .ics file use ics:"
    if not os.access(joined, os.R_OK | (os.X_OK if key == "vdir" else 0)):
        return True, f"{path} cannot be read (permission denied)", _PERMISSIONS
    return None


_PERMISSIONS = "let the user steadyhand runs as read it, or fix the path"
