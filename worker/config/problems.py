"""Cross-checks of the YAML tree that the schema cannot make (control characters,
secrets written inline, references between sections), and :class:`_Locator`, which
gives each problem the line it is on."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from worker.config.reader import YamlMap, YamlSeq
from worker.config.values import (
    _CONTROL,
    SECRET_KEYS,
    _close,
    _control_message,
    _shown,
)
from worker.core.errors import Problem


class _Locator:
    """Maps a path of keys and indexes in the YAML tree to its line number."""

    def __init__(self, tree: YamlMap, file: str) -> None:
        self.tree, self.file = tree, file

    def line(self, loc: tuple[int | str, ...]) -> int | None:
        node: Any = self.tree
        line: int | None = 1
        for part in loc:
            found = (isinstance(node, YamlMap) and isinstance(part, str) and part in node) or (
                isinstance(node, YamlSeq) and isinstance(part, int) and 0 <= part < len(node)
            )
            if not found:
                break
            line, node = node.lines[part], node[part]
        return line

    def problem(self, loc: tuple[int | str, ...], what: str, fix: str) -> Problem:
        return Problem(what, fix, self.file, self.line(loc), _dotted(loc))


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _walk(
    node: Any, loc: tuple[int | str, ...] = ()
) -> Iterator[tuple[tuple[int | str, ...], Any, Any]]:
    """Every ``(loc, key, value)`` of every mapping in the tree (its depth is bounded)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*loc, key), key, value
            yield from _walk(value, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*loc, i))


def _texts(
    node: Any, loc: tuple[int | str, ...] = ()
) -> Iterator[tuple[tuple[int | str, ...], str]]:
    """Every key and every text scalar in the tree, with its loc (the depth is bounded)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*loc, key), key
            yield from _texts(value, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _texts(value, (*loc, i))
    elif isinstance(node, str):
        yield loc, node


def _text_problems(tree: YamlMap, locate: _Locator) -> list[Problem]:
    """A control character (CR/LF too) in any key or text value: one line each."""
    problems: list[Problem] = []
    if not tree.controls:  # the reader saw none: skip the walk
        return problems
    for loc, text in _texts(tree):
        message = _control_message(text)
        if message:
            what, _, fix = message.partition(" — ")
            problems.append(locate.problem(loc, what, fix))
    return problems


def _secret_problems(tree: YamlMap, locate: _Locator) -> list[Problem]:
    problems = []
    for loc, key, value in _walk(tree):
        if str(key).lower() in SECRET_KEYS and value not in (None, ""):
            problems.append(
                locate.problem(
                    loc,
                    "a secret must not be written in the config file",
                    "put it in an environment variable and write "
                    + (
                        f"`{key}_env: VARIABLE_NAME`"
                        if key != "password"
                        else "`password_env: SMTP_PASSWORD`"
                    ),
                )
            )
    return problems


def _reference_problems(tree: YamlMap, locate: _Locator) -> list[Problem]:
    """Cross-checks that need the whole file: teams name people, calendars name accounts.
    Linear in the size of the file: names are looked up in sets, hints are budgeted."""
    people = _items(tree.get("people"))
    teams = _items(tree.get("teams"))
    accounts = _items(tree.get("accounts"))
    emails: dict[str, int] = {}
    problems: list[Problem] = []
    for i, person in enumerate(people):
        if isinstance(person, Mapping) and isinstance(person.get("email"), str):
            email = person["email"].lower()
            if email in emails:
                problems.append(
                    locate.problem(
                        ("people", i, "email"),
                        f"{email} is listed twice",
                        "keep one entry per person",
                    )
                )
            emails.setdefault(email, i)
    known = list(emails)
    account_names = {str(a.get("name")) for a in accounts if isinstance(a, Mapping)}
    team_names = {str(t.get("name")) for t in teams if isinstance(t, Mapping)}

    def unknown_person(loc: tuple[int | str, ...], email: Any) -> None:
        if not isinstance(email, str) or email.lower() in emails or _CONTROL.search(email):
            return  # not text, or a control character (said by _text_problems)
        close = _close(email.lower(), known, cutoff=0.85)
        fix = f"did you mean {close}?" if close else "add them under people: or fix the address"
        problems.append(locate.problem(loc, f"{email} is not listed under people:", fix))

    for t, team in enumerate(teams):
        if not isinstance(team, Mapping):
            continue
        unknown_person(("teams", t, "leader"), team.get("leader"))
        for m, member in enumerate(_items(team.get("members"))):
            unknown_person(("teams", t, "members", m), member)
    for i, person in enumerate(people):
        calendar = person.get("calendar") if isinstance(person, Mapping) else None
        if (
            isinstance(calendar, Mapping)
            and "account" in calendar
            and str(calendar["account"]) not in account_names
        ):
            close = _close(str(calendar["account"]), sorted(account_names))
            fix = f"did you mean {close!r}?" if close else "add it under accounts: or fix the name"
            problems.append(
                locate.problem(
                    ("people", i, "calendar", "account"),
                    f"no account named {_shown(calendar['account'])}",
                    fix,
                )
            )
    for a, admin in enumerate(_items(tree.get("admins"))):
        unknown_person(("admins", a), admin)
    partners = (
        tree.get("emails", {}).get("partners") if isinstance(tree.get("emails"), Mapping) else None
    )
    if isinstance(partners, Mapping):
        team = partners.get("team")
        if isinstance(team, str) and team not in team_names:
            close = _close(team, sorted(team_names))
            fix = f"did you mean {close!r}?" if close else "use a name listed under teams:"
            problems.append(
                locate.problem(("emails", "partners", "team"), f"no team named {_shown(team)}", fix)
            )
        for g, group in enumerate(_items(partners.get("pairs"))):
            for m, member in enumerate(_items(group)):
                unknown_person(("emails", "partners", "pairs", g, m), member)
    audiences: list[tuple[tuple[int | str, ...], Any]] = []
    for r, rule in enumerate(_items(tree.get("protect"))):
        if isinstance(rule, Mapping) and "for" in rule:
            audiences.append((("protect", r, "for"), rule["for"]))
    emails_section = tree.get("emails")
    if isinstance(emails_section, Mapping):
        for program, section in emails_section.items():
            if isinstance(section, Mapping) and "to" in section:
                audiences.append((("emails", str(program), "to"), section["to"]))
    for loc, spec in audiences:
        if isinstance(spec, str) and spec.startswith("team:") and spec[5:] not in team_names:
            problems.append(
                locate.problem(
                    loc, f"no team named {_shown(spec[5:])}", "use a name listed under teams:"
                )
            )
        elif isinstance(spec, list):
            for k, email in enumerate(spec):
                unknown_person((*loc, k), email)
    return problems


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
