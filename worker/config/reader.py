"""Reading ``steadyhand.yaml`` safely: bytes -> a tree of mappings, lists and scalars that
remembers the line of every key and item, or one :class:`~connectors.base.Problem`.

Whatever the file holds, reading it is bounded and never raises:

* at most :data:`MAX_BYTES` bytes (read no further); UTF-8 only;
* no control characters in the text (tabs and line breaks aside);
* no anchors, aliases or merge keys (``&a``, ``*a``, ``<<:``): the tree is built from
  the parser's event stream and an alias is refused where it is seen, so an alias or
  merge-list bomb is never expanded;
* at most :data:`MAX_DEPTH` nested collections, counted while reading, so deep nesting
  stops early instead of ending in a RecursionError;
* one document; no tags other than ``!!str``, ``!!map`` and ``!!seq``; plain keys only.

Scalars are read as YAML 1.2's core schema says (``true``/``false``, ``null``/``~``,
integers, floats; everything else is text), as ruamel.yaml read them before. The parser
is libyaml's (PyYAML's C extension) when it is there, which keeps 100,000 people well
under a second of parsing; the pure-Python parser gives the same events.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from worker.core.errors import Problem

#: The largest config file read (bytes); a larger one is refused in one line.
MAX_BYTES = 16 * 1024**2
#: The deepest nesting of mappings and lists (steadyhand's own keys go 5 deep).
MAX_DEPTH = 32
#: The most keys and values (scalars and collections) read: 100,000 people with a name,
#: a team of all of them and two audiences are about 725,000.
MAX_NODES = 1_000_000
#: Integers longer than this many digits are refused (Python refuses 4,300 anyway).
MAX_DIGITS = 1000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: What YAML (and libyaml) allow in a document, less nothing: the same set as libyaml.
_DISALLOWED = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: What may not appear in any value once read: C0 and C1 control characters (tab and line
#: breaks too: every value is one line), and the Unicode line and paragraph separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ODD_SPACE = re.compile("[\t\x85\u2028\u2029]")
_ESCAPING = frozenset({'"', "|", ">"})
_MAYBE_NOT_TEXT = frozenset("0123456789+-.~nNtTfF")
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False}
_BOOL["FALSE"] = False
_INT = re.compile(r"[-+]?[0-9][0-9_]*")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)")
_STR_TAGS = frozenset({"tag:yaml.org,2002:str", "!"})
_MAP_TAGS = frozenset({"tag:yaml.org,2002:map"})
_SEQ_TAGS = frozenset({"tag:yaml.org,2002:seq"})
_TOO_DEEP = (
    f"nested too deeply (more than {MAX_DEPTH} levels)",
    "steadyhand's keys nest at most 5 levels: flatten it",
)
_NO_ALIASES = "anchors and aliases are not supported in steadyhand.yaml"


class YamlMap(dict[str, Any]):
    """A mapping read from the file; ``lines[key]`` is the 1-based line of ``key``."""

    __slots__ = ("controls", "line", "lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: dict[str, int] = {}
        #: (on the root) some key or text value holds a control character
        self.controls = False


class YamlSeq(list[Any]):
    """A list read from the file; ``lines[i]`` is the 1-based line of item ``i``."""

    __slots__ = ("line", "lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []


class _Refused(Exception):
    def __init__(self, line: int | None, what: str, fix: str) -> None:
        super().__init__(what)
        self.line, self.what, self.fix = line, what, fix


_NO_KEY: Any = object()


def read(data: bytes, file: str) -> tuple[Any, Problem | None]:
    """The tree in ``data`` (None for an empty file), or the one problem that stops it."""
    if len(data) > MAX_BYTES:
        return None, Problem(
            f"the file is larger than {MAX_BYTES // 1024**2} MB",
            "steadyhand.yaml is read only up to that size: split the people out or trim it",
            file,
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, Problem(
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x})",
            "save it as UTF-8",
            file,
            line,
        )
    bad = _DISALLOWED.search(text)
    if bad:
        at = text.count("\n", 0, bad.start()) + 1
        return None, Problem(
            f"the file holds a control character (U+{ord(bad[0]):04X})",
            "remove it: only tabs and line breaks may appear",
            file,
            at,
        )
    try:
        return _build(text), None
    except _Refused as exc:
        return None, Problem(exc.what, exc.fix, file, exc.line)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = f"YAML syntax error: {exc.problem or exc.context}"
        fix = "fix the indentation or quoting on that line"
        if "nesting depth" in what:  # libyaml's own limit, met before ours in flow style
            what, fix = _TOO_DEEP
        return None, Problem(what, fix, file, mark.line + 1 if mark else None)
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", None)
        where = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        return None, Problem(f"YAML error: {exc}", "fix that line", file, where)


def _build(text: str) -> Any:
    """The tree, from the event stream (one pass, dispatching on the event's type)."""
    root: Any = None
    #: open collections, and per mapping the key waiting for its value
    stack: list[YamlMap | YamlSeq] = []
    keys: list[Any] = []
    documents = 0
    #: only these scalars can hold a control character once read (escapes, line breaks kept);
    #: any scalar may when the text has a tab or a Unicode line break in it
    odd = _ODD_SPACE.search(text) is not None
    controls = False
    nodes = 0
    event: Any  # dispatched on its exact type below, faster than isinstance chains
    for event in yaml.parse(text, Loader=_Loader):
        kind = type(event)
        line: int = event.start_mark.line + 1 if event.start_mark else 0
        if kind is ScalarEvent or kind is MappingStartEvent or kind is SequenceStartEvent:
            nodes += 1
            if nodes > MAX_NODES:
                raise _Refused(
                    line,
                    f"the file holds more than {MAX_NODES:,} keys and values",
                    "steadyhand reads at most that many (about 130,000 people with a "
                    "name each): trim it",
                )
        if kind is ScalarEvent:
            if event.anchor is not None:
                raise _Refused(line, _NO_ALIASES, "write the values out")
            if not controls and (odd or event.style in _ESCAPING) and CONTROL.search(event.value):
                controls = True
            if stack and keys[-1] is _NO_KEY and type(stack[-1]) is YamlMap:
                _key(stack[-1], keys, event, line)
                continue
            value: Any = _scalar(event, line)
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            value = stack.pop()
            keys.pop()
            line = value.line
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None:
                raise _Refused(line, _NO_ALIASES, "write the values out")
            if stack and keys[-1] is _NO_KEY and type(stack[-1]) is YamlMap:
                raise _Refused(line, "a key must be plain text", "write the key as a word")
            if len(stack) >= MAX_DEPTH:
                raise _Refused(line, *_TOO_DEEP)
            mapping = kind is MappingStartEvent
            if event.tag is not None and event.tag not in (_MAP_TAGS if mapping else _SEQ_TAGS):
                raise _Refused(line, f"YAML tags ({event.tag}) are not supported", "remove it")
            stack.append(YamlMap(line) if mapping else YamlSeq(line))
            keys.append(_NO_KEY)
            continue
        elif kind is AliasEvent:
            raise _Refused(line, _NO_ALIASES, "write the values out")
        elif kind is DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _Refused(line, "a second YAML document", "keep one document in the file")
            continue
        else:
            continue
        if not stack:
            root = value
        elif type(stack[-1]) is YamlSeq:
            stack[-1].append(value)
            stack[-1].lines.append(line)
        else:
            stack[-1][keys[-1]] = value
            keys[-1] = _NO_KEY
    if isinstance(root, YamlMap):
        root.controls = controls
    return root


def _key(node: YamlMap, keys: list[Any], event: ScalarEvent, line: int) -> None:
    key = event.value
    if event.tag not in (None, *_STR_TAGS):
        raise _Refused(line, f"YAML tags ({event.tag}) are not supported", "remove it")
    if key == "<<" and not event.style:
        raise _Refused(line, "merge keys (<<) are not supported", "write the values out")
    if key in node:
        raise _Refused(
            line,
            f"key {key[:60]!r} is given twice (first on line {node.lines[key]})",
            "keep one",
        )
    node.lines[key] = line
    keys[-1] = key


def _scalar(event: ScalarEvent, line: int | None) -> Any:
    value = event.value
    if event.tag is not None and event.tag not in _STR_TAGS:
        raise _Refused(line, f"YAML tags ({event.tag}) are not supported", "remove it")
    if event.style or event.tag is not None:
        return value  # quoted or a block scalar, or !!str (plain: None, or "" from libyaml)
    if value and value[0] not in _MAYBE_NOT_TEXT:
        return value  # the common case: no number, null or boolean starts like this
    if value in _NULL:
        return None
    if value in _BOOL:
        return _BOOL[value]
    if len(value) > MAX_DIGITS and value[:1] in "+-0123456789.":
        if _INT.fullmatch(value) or _FLOAT.fullmatch(value):
            raise _Refused(
                line, f"a number with more than {MAX_DIGITS} digits", "write a smaller number"
            )
        return value
    if _INT.fullmatch(value):
        return int(value)
    if _OCT.fullmatch(value):
        return int(value[2:], 8)
    if _HEX.fullmatch(value):
        return int(value[2:], 16)
    if _FLOAT.fullmatch(value):
        return float(value.replace("_", ""))
    if _INF.fullmatch(value):
        return float("-inf") if value.startswith("-") else float("inf")
    if _NAN.fullmatch(value):
        return float("nan")
    return value
