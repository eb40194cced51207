"""Loading ``steadyhand.yaml``: find it, read it (:mod:`worker.config.reader`), validate
it (:mod:`worker.config.schema`), cross-check it, and report every problem with its
line and fix; the templates are compiled in a bounded child process."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import (
    BaseModel,
    ValidationError,
)

from worker.config import reader as config_yaml
from worker.config import readiness
from worker.config.problems import _Locator, _reference_problems, _secret_problems, _text_problems
from worker.config.reader import YamlMap
from worker.config.schema import Settings
from worker.config.values import (
    _CONTROL,
    DEFAULT_NAME,
    ENV_VAR,
    MAX_SUGGESTIONS,
    SECRET_KEY_ENV,
    _close,
    _shown,
    _suggestions_left,
)
from worker.core.errors import ConfigError, Problem

logger = logging.getLogger(__name__)

# -- loading -----------------------------------------------------------------------------


#: The system-wide config, looked at last.
SYSTEM_CONFIG = Path("/etc/steadyhand") / DEFAULT_NAME


def find(explicit: Path | str | None = None, cwd: Path | None = None) -> Path:
    """The config file to use (see :func:`locate` for the order)."""
    return locate(explicit, cwd)[0]


def locate(explicit: Path | str | None = None, cwd: Path | None = None) -> tuple[Path, str]:
    """``(path, how it was found)`` of the config file: ``-c FILE``, else
    ``$STEADYHAND_CONFIG``, else the first of ./steadyhand.yaml,
    ``$XDG_CONFIG_HOME/steadyhand/steadyhand.yaml`` (default ``~/.config``) and
    /etc/steadyhand/steadyhand.yaml that exists. A file named by ``-c`` or the variable
    must exist; when none is found the error lists every place looked at."""
    fix = "run `steadyhand init` to make a starter steadyhand.yaml, or pass -c FILE"
    fix_all = f"{fix} or set ${ENV_VAR}"
    named = [(explicit, "-c"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")]
    for value, origin in named:
        if value:
            if not Path(value).is_file():
                raise ConfigError(Problem(f"no configuration at {value} (from {origin})", fix))
            return Path(value), origin
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    config_home = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".config"
    places = [
        ((cwd or Path.cwd()) / DEFAULT_NAME, "the current folder"),
        (config_home / "steadyhand" / DEFAULT_NAME, "$XDG_CONFIG_HOME" if xdg else "~/.config"),
        (SYSTEM_CONFIG, "/etc/steadyhand"),
    ]
    for candidate, origin in places:
        if candidate.is_file():
            return candidate, origin
    looked = ", ".join(str(candidate) for candidate, _ in places)
    raise ConfigError(Problem(f"no configuration found (looked at {looked})", fix_all))


def load(path: Path | str) -> Settings:
    """Parse, validate and cross-check ``path``; raise one ConfigError with every problem."""
    settings, problems, _ = _load(Path(path))
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


def check(path: Path | str) -> list[Problem]:
    """Every problem in the config at ``path`` (empty when it is fine)."""
    return _load(Path(path))[1]


def inspect(path: Path | str) -> tuple[Settings | None, list[Problem], list[Problem]]:
    """``(settings, problems, warnings)`` of the config at ``path``: settings when there is
    no problem; warnings are what works but not as one would expect (exit code stays 0).

    Beyond :func:`check`, what ``config check`` alone looks at (the other commands still
    run, and a calendar in trouble fails alone at sync): a config with no people, a kind
    not available yet, and each calendar's ``ics:`` file and ``vdir:`` folder on disk."""
    return _load(Path(path), setup=True)


#: At most this many problems are listed (sorted by line); one more line says how many more.
MAX_PROBLEMS = 1000


def _load(path: Path, setup: bool = False) -> tuple[Settings | None, list[Problem], list[Problem]]:
    shown = str(path)
    token = _suggestions_left.set(MAX_SUGGESTIONS)
    try:
        settings, problems, warnings = _load_checked(path, shown, setup)
    except Exception as exc:  # a bug of ours must still be one line, never a traceback
        logger.exception("config check failed on %s", shown)
        problem = Problem(
            f"steadyhand could not check this file ({type(exc).__name__})",
            "please report it, with the file if you can",
            shown,
        )
        settings, problems, warnings = None, [problem], []
    finally:
        _suggestions_left.reset(token)
    return (
        settings,
        [_one_line_problem(p) for p in problems],
        [_one_line_problem(w) for w in warnings],
    )


def _load_checked(
    path: Path, shown: str, setup: bool = False
) -> tuple[Settings | None, list[Problem], list[Problem]]:
    try:
        with path.open("rb") as file:
            data = file.read(config_yaml.MAX_BYTES + 1)
    except FileNotFoundError:
        return (
            None,
            [Problem("file not found", "check the path or run `steadyhand init`", shown)],
            [],
        )
    except OSError as exc:
        return (
            None,
            [Problem(f"cannot read it: {exc.strerror or exc}", "check the file", shown)],
            [],
        )
    tree, problem = config_yaml.read(data, shown)
    if problem is not None:
        return None, [problem], []
    if tree is None:
        tree = YamlMap(1)
    if not isinstance(tree, YamlMap):
        what = "the file must be a YAML mapping of sections"
        return None, [Problem(what, "see config/example.yaml", shown, 1)], []
    locate = _Locator(tree, shown)
    problems = (
        _text_problems(tree, locate)
        + _secret_problems(tree, locate)
        + _reference_problems(tree, locate)
    )
    warnings = _warnings(tree, locate)
    if setup:
        found, unsure = readiness.problems(tree, locate, path.parent.resolve())
        problems += found
        warnings += unsure
    settings = None
    unlisted = 0
    try:
        settings = Settings.model_validate(
            {**_plain(tree), "source": path, "base_dir": path.parent.resolve()}
        )
    except ValidationError as exc:
        count = exc.error_count()
        if count > MAX_PROBLEMS:  # errors() of a million costs seconds: list the first ones,
            try:  # from the same data with each list and mapping cut to its first items
                Settings.model_validate({**_plain(tree, MAX_PROBLEMS), "source": path})
            except ValidationError as first:
                exc = first
        errors = exc.errors(include_url=False)[:MAX_PROBLEMS]
        unlisted = max(0, count - len(errors))
        problems += [_problem_from(error, locate) for error in errors]
    secret_paths = {p.path for p in problems if "secret" in p.what}
    problems = [p for p in problems if not (p.path in secret_paths and "unknown key" in p.what)]
    problems = sorted(set(problems), key=lambda p: (p.line or 0, p.path, p.what))
    if len(problems) > MAX_PROBLEMS or unlisted:
        more = max(0, len(problems) - MAX_PROBLEMS) + unlisted
        cut = Problem(f"{more} more problems not listed", "fix these and check again", shown)
        problems = [*problems[:MAX_PROBLEMS], cut]
    if len(warnings) > MAX_PROBLEMS:
        more = len(warnings) - MAX_PROBLEMS
        cut = Problem(f"{more} more warnings not listed", "fix these and check again", shown)
        warnings = [*warnings[:MAX_PROBLEMS], cut]
    return (settings if not problems else None), problems, warnings


def _warnings(tree: YamlMap, locate: _Locator) -> list[Problem]:
    """What works, but not as the admin may think."""
    if os.environ.get(SECRET_KEY_ENV, "").strip():
        return []
    fix = f"set {SECRET_KEY_ENV} (the same key that encrypts tokens) in the worker's environment"
    found = []
    mail_section = tree.get("mail")
    url = mail_section.get("unsubscribe_url") if isinstance(mail_section, Mapping) else None
    if isinstance(url, str) and url:
        found.append(
            locate.problem(
                ("mail", "unsubscribe_url"),
                f"mail.unsubscribe_url is set but {SECRET_KEY_ENV} is not: emails will carry "
                "no unsubscribe link (their footer names `steadyhand unsubscribe`)",
                fix,
            )
        )
    web_section = tree.get("web")
    base = web_section.get("base_url") if isinstance(web_section, Mapping) else None
    if isinstance(base, str) and base:
        found.append(
            locate.problem(
                ("web", "base_url"),
                f"web.base_url is set but {SECRET_KEY_ENV} is not: emails will carry no web "
                "links (no answer, journal or preferences pages)",
                fix,
            )
        )
    return found


def _one_line_problem(problem: Problem) -> Problem:
    """The problem with control characters escaped and each part cut to a readable length,
    so that it prints as one line whatever the file held."""

    def clean(text: str, limit: int = 400) -> str:
        text = _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)
        return text if len(text) <= limit else text[: limit - 1] + "…"

    return Problem(
        clean(problem.what), clean(problem.fix), problem.file, problem.line, clean(problem.path)
    )


def _plain(node: Any, cut: int | None = None) -> Any:
    """Plain dicts and lists for pydantic; with ``cut``, only the first ``cut`` items of each."""
    if isinstance(node, dict):
        return {k: _plain(v, cut) for k, v in itertools.islice(node.items(), cut)}
    if isinstance(node, list):
        return [_plain(v, cut) for v in itertools.islice(node, cut)]
    return node


_BUILTIN_FIXES = {
    "missing": "add it",
    "bool_type": "write true or false",
    "bool_parsing": "write true or false",
    "int_type": "write a whole number",
    "int_parsing": "write a whole number",
    "float_type": "write a number",
    "float_parsing": "write a number",
    "literal_error": "",
    "string_type": "write it as text",
    "model_type": "write it as a mapping of keys",
    "tuple_type": "write it as a list",
    "list_type": "write it as a list",
}


_BOUNDS = {
    "less_than_equal": ("le", "is too large", "the most is {}"),
    "less_than": ("lt", "is too large", "write less than {}"),
    "greater_than_equal": ("ge", "is too small", "the least is {}"),
    "greater_than": ("gt", "is too small", "write more than {}"),
}


def _problem_from(error: Mapping[str, Any], locate: _Locator) -> Problem:
    loc = _clean_loc(tuple(error["loc"]))
    kind = error["type"]
    shown = _shown(error.get("input"))
    if kind == "extra_forbidden" and loc:
        key = str(loc[-1])
        known = _known_keys(tuple(p for p in loc[:-1] if isinstance(p, str)))
        close = _close(key, known)
        fix = (
            f"did you mean {close!r}?"
            if close
            else "remove it (known keys: " + ", ".join(known) + ")"
        )
        return locate.problem(loc, f"unknown key {_shown(key)}", fix)
    message = str(error["msg"]).removeprefix("Value error, ") or "is not valid"
    if " — " in message:
        what, _, fix = message.partition(" — ")
        return locate.problem(loc, what, fix)
    if kind == "missing":
        return locate.problem(loc, "required key is missing", "add it")
    if kind == "literal_error":
        return locate.problem(loc, f"{shown} is not allowed", message[0].lower() + message[1:])
    if kind in _BOUNDS and isinstance(error.get("ctx"), Mapping):
        name, what, fix = _BOUNDS[kind]
        bound = error["ctx"].get(name)
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        return locate.problem(loc, f"{shown} {what}", fix.format(bound))
    if kind == "finite_number":
        return locate.problem(loc, f"{shown} is not a finite number", "write a number")
    fix = _BUILTIN_FIXES.get(kind, "see config/example.yaml")
    return locate.problem(loc, f"{message[0].lower()}{message[1:]} (got {shown})", fix)


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop pydantic's union/validator tags (``function-before[...]``, ``int``) from a loc."""
    out: list[int | str] = []
    for part in loc:
        if isinstance(part, str) and (
            "[" in part
            or part in {"int", "float", "str", "list[str]", "timedelta", "function-after"}
        ):
            continue
        out.append(part)
    return tuple(out)


@functools.cache
def _known_keys(loc: tuple[str, ...]) -> list[str]:
    model: Any = Settings
    for part in loc:
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    return sorted(
        f.alias or n for n, f in model.model_fields.items() if n not in ("source", "base_dir")
    )


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, tuple, list, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _all_keys(model: type[BaseModel] = Settings) -> set[str]:
    """Every key the YAML may hold, at any depth (the docs test checks each is documented)."""
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        if name in ("source", "base_dir"):
            continue
        keys.add(info.alias or name)
        inner = _model_in(info.annotation)
        if inner is not None:
            keys |= _all_keys(inner)
    return keys
