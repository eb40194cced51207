"""Templates run in a budget: time, loop rounds and the size of every value they build.

An admin's template is code. Jinja2's immutable sandbox already stops it reaching into
Python (``__class__``, ``__globals__``: a ``SecurityError``); this module also stops it
running for ever or building a value the size of the machine's memory. A render gets a
:class:`Budget` (see :func:`budget`) and every way a template can do a lot of work is
hooked and checked against it:

* every ``{% for %}`` round (the code generator wraps each loop's iterable) and every
  call (macros included) checks the deadline; loop rounds are counted;
* every operation that can build more than it was given is sized *before* it runs:
  ``*`` (``'x' * 10**10``, ``[1] * 10**9``), ``**`` (``10**10**8``), ``%`` and
  ``str.format`` padding (``'{:>999999999}'``), ``+`` and ``~``, the joins of buffered
  output (macros, ``{% set %}`` blocks), the filters that pad, repeat or join
  (``center``, ``indent``, ``wordwrap``, ``replace``, ``format``, ``join``, ``batch``,
  ``slice``, ``sum``), ``range`` and ``lipsum``, and ``str`` methods (``ljust``, ``zfill``,
  ``replace``, ``join``, ``expandtabs``…);
* each value built is at most :data:`MAX_VALUE_CHARS`, and all of them together at most
  :data:`MAX_WORK_CHARS` (garbage included), so peak memory stays bounded.

Going over raises :class:`BudgetExceeded` (a ``TemplateRuntimeError``): the caller
reports it as a template problem. A subprocess with RLIMIT_AS would bound memory
without these hooks but costs a process hop per email; the hooks cost microseconds.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Macro, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import _PassArg, generate_lorem_ipsum
from markupsafe import EscapeFormatter, Markup

from worker.budget import (
    MAX_INT_BITS,
    MAX_ITEMS,
    BudgetExceeded,
    _count,
    _current,
    charge,
    size_of,
)

# -- sized operators -------------------------------------------------------------------

_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


@functools.lru_cache(maxsize=512)
def _conversions(fmt: str) -> tuple[tuple[str | None, str | None], ...]:
    """The (width, precision) of each conversion of a % format (a template's formats
    are few and used in loops: parsed once)."""
    return tuple((m.group(1), m.group(2)) for m in _PERCENT.finditer(fmt))


def _percent_size(fmt: str, args: Any) -> int:
    """The size ``fmt % args`` would have; a width or precision (written, or ``*`` taken
    from the arguments) over MAX_ITEMS is refused."""
    if isinstance(args, dict):
        values = list(args.values())
    else:
        values = list(args) if isinstance(args, tuple) else [args]
    widest = max((size_of(v) for v in values), default=0)
    total, taken = len(fmt), 0
    for specs in _conversions(fmt):
        pad = 0
        for given in specs:
            width = int(given) if given and given != "*" else 0
            if given == "*":
                star = values[taken] if taken < len(values) else 0
                taken += 1
                width = abs(star) if isinstance(star, int) else 0
            pad = max(pad, width)
        _count(pad, "a % format width")
        total += pad + widest
    return total


def _repeat(left: Any, right: Any) -> Any:
    seq, n = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(seq, str | list | tuple) and isinstance(n, int) and not isinstance(n, bool):
        if isinstance(seq, list | tuple):
            _count(len(seq) * n, "a list")
        charge(size_of(seq) * max(n, 0), "a repeated value")
    elif isinstance(left, int) and isinstance(right, int):
        _bits(left.bit_length() + right.bit_length())
    return left * right


def _power(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        _bits(left.bit_length() * right)
    return left**right


def _bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise BudgetExceeded(f"a number of about {bits:,} bits (at most {MAX_INT_BITS:,})")


def _plus(left: Any, right: Any) -> Any:
    if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        if isinstance(left, list | tuple):
            _count(len(left) + len(right), "a list")
        charge(size_of(left) + size_of(right), "a joined value")
    return left + right


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        charge(_percent_size(left, right), "a formatted string")
    return left % right


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": _repeat,
    "**": _power,
    "+": _plus,
    "%": _modulo,
}


# -- str.format ------------------------------------------------------------------------


class _SizedFormatter(SandboxedFormatter):
    """The sandbox's formatter (fields looked up through the sandbox), with every
    field's width and size checked before it is formatted."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        widths = [int(n) for n in re.findall(r"\d+", format_spec)]
        for width in widths:
            _count(width, "a format width")
        charge(max(widths, default=0) + size_of(value), "a formatted field")
        return super().format_field(value, format_spec)


class _SizedEscapeFormatter(_SizedFormatter, EscapeFormatter):
    pass


# -- str methods and calls ---------------------------------------------------------------


def _str_method_size(owner: str, name: str, args: tuple[Any, ...]) -> int | None:
    """The size a ``str`` method call would build, for the ones that can grow it."""
    if name in ("center", "ljust", "rjust", "zfill") and args:
        return max(len(owner), int(args[0]))
    if name == "expandtabs":
        return len(owner) + owner.count("\t") * int(args[0] if args else 8)
    if name == "replace" and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        count = owner.count(old) if old else len(owner) + 1
        if len(args) > 2 and int(args[2]) >= 0:
            count = min(count, int(args[2]))
        return len(owner) + count * max(0, len(new) - len(old))
    if name in ("split", "rsplit", "splitlines"):  # a list of new strings: ~64 bytes each
        sep = args[0] if args and isinstance(args[0], str) and name != "splitlines" else None
        if sep:
            items = owner.count(sep) + 1
        elif name == "splitlines":
            items = owner.count("\n") + owner.count("\r") + 1
        else:
            items = (len(owner) + 1) // 2
        return len(owner) + 8 * items
    return None


# -- filters and globals ----------------------------------------------------------------

_PASSED = ("eval_ctx", "environment", "env", "context")


def _bind(f: Callable[..., Any]) -> Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]:
    sig = inspect.signature(f)
    params = list(sig.parameters.values())
    if params and params[0].name in _PASSED:
        sig = sig.replace(parameters=params[1:])
    skip = 1 if _PassArg.from_obj(f) is not None else 0

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = sig.bind(*args[skip:], **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    return bind


def _check_center(a: dict[str, Any]) -> None:
    _count(a["width"], "a center width")
    charge(max(size_of(a["value"]), int(a["width"])), "a centred string")


def _check_indent(a: dict[str, Any]) -> None:
    width = a["width"]
    _count(width, "an indent width")
    pad = len(width) if isinstance(width, str) else int(width)
    text = str(a["s"])
    charge(len(text) + (text.count("\n") + 1) * pad, "an indented string")


def _check_wordwrap(a: dict[str, Any]) -> None:
    _count(a["width"], "a wordwrap width")
    text, width = str(a["s"]), max(1, int(a["width"]))
    if len(text) > MAX_ITEMS and width < 20:  # textwrap cuts long words in quadratic time
        raise BudgetExceeded(f"wordwrap of {len(text):,} characters at width {width}")
    wrap = a["wrapstring"] or "\n"
    charge(len(text) + (len(text) // width + 1) * len(wrap), "a wrapped string")


def _check_replace(a: dict[str, Any]) -> None:
    args = (a["old"], a["new"]) + (() if a["count"] is None else (a["count"],))
    charge(_str_method_size(str(a["s"]), "replace", args) or 0, "a replaced string")


def _check_batch(a: dict[str, Any]) -> None:
    _count(a["linecount"], "a batch size")
    if isinstance(a["value"], str | list | tuple):  # a new list per batch
        charge(64 * (len(a["value"]) // max(1, int(a["linecount"])) + 1), "batches")


def _check_slice(a: dict[str, Any]) -> None:
    _count(a["slices"], "a slice count")


FILTER_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "center": _check_center,
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "replace": _check_replace,
    "batch": _check_batch,
    "slice": _check_slice,
}
#: Filters that turn their value into text: a value too big to print is refused first.
STRINGIFY = frozenset(
    {
        *("string", "e", "escape", "forceescape", "tojson", "pprint", "urlencode", "urlize"),
        *("xmlattr", "title", "upper", "lower", "capitalize", "trim", "striptags", "safe"),
        *("truncate", "wordcount", "filesizeformat"),
    }
)


def _guard_filter(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    check = FILTER_CHECKS.get(name)
    bind = _bind(f) if check is not None or name in ("join", "sum") else None
    skip = 1 if _PassArg.from_obj(f) is not None else 0
    if name == "format":  # used in loops by the shipped digest: checked without binding
        bind = None

    @functools.wraps(f)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if name == "format" and args:
            charge(_percent_size(str(args[0]), kwargs or args[1:]), "a formatted string")
        elif bind is not None:
            bound = bind(args, kwargs)
            if check is not None:
                check(bound)
            elif name == "join":  # materialise once, size it, then join that
                items = list(bound["value"])
                glue = len(str(bound["d"])) * len(items)
                charge(sum(size_of(i) for i in items) + glue, "a joined string")
                args = (*args[:skip], items, *args[skip + 1 :])
            else:  # sum: adding lists or strings copies the growing total each time
                items = list(bound["iterable"])
                if not isinstance(bound["start"], int | float):
                    _count(len(items) * len(items), "a sum of sequences (items squared)")
                args = (*args[:skip], items, *args[skip + 1 :])
        elif name in STRINGIFY and args[skip:]:
            charge(size_of(args[skip]), "a value to print")
        result = f(*args, **kwargs)
        _charge_result(result)
        return result

    return guarded


def _charge_result(result: Any) -> None:
    """What a filter or call built: a string by its characters, a list, tuple or dict by
    eight per item (the pointers; a list of a million short strings is not small)."""
    if isinstance(result, str):
        charge(len(result))
    elif isinstance(result, list | tuple | dict):
        charge(8 * len(result), "a list")


def _range(*args: int) -> range:
    rng = range(*args)
    _count(len(rng), "a range")
    return rng


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    n, min, max = int(n), int(min), int(max)
    _count(n, "lipsum paragraphs")
    _count(max, "lipsum words")
    charge(n * max * 12, "lipsum")
    return generate_lorem_ipsum(n, html, min, max)


# -- the environment and its code generator ---------------------------------------------


class _CodeGenerator(CodeGenerator):
    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # Each loop's iterable becomes environment.budget_rounds(iterable): rounds counted.
        # (Jinja2 allows no custom node types, so it is a call of an environment attribute.)
        wrapped = node.iter
        if not (
            isinstance(wrapped, nodes.Call) and isinstance(wrapped.node, nodes.EnvironmentAttribute)
        ):
            node.iter = nodes.Call(
                nodes.EnvironmentAttribute("budget_rounds", lineno=node.lineno),
                [wrapped],
                [],
                None,
                None,
                lineno=node.lineno,
            )
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            markup = "context.eval_ctx.volatile"
        else:
            markup = repr(bool(frame.eval_ctx.autoescape))
        self.write(f"environment.budget_concat({markup}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, with every template's work sized and counted."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset(_BINOPS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.globals.update(range=_range, lipsum=_lipsum)

    def concat(self, parts: Iterable[str]) -> str:
        """Buffered output (a macro, ``{% set %}…{% endset %}``, ``caller()``), sized first."""
        items = list(parts)
        charge(sum(map(len, items)), "buffered output")
        return "".join(items)

    def budget_rounds(self, iterable: Iterable[Any]) -> Iterator[Any]:
        b = _current.get()
        if b is None:
            yield from iterable
            return
        for item in iterable:
            b.round()
            yield item

    def budget_concat(self, markup: bool, values: tuple[Any, ...]) -> str:
        charge(sum(size_of(v) for v in values), "a value joined with ~")
        return markup_join(values) if markup else str_join(values)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return _BINOPS[operator](left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        b = _current.get()
        if b is not None:
            b.clock()
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        owner = getattr(__obj, "__self__", None)
        if isinstance(__obj, types.BuiltinMethodType) and not isinstance(owner, types.ModuleType):
            for arg in (*args, *kwargs.values()):
                _count(arg, f"an argument to {__obj.__name__}")
            if isinstance(owner, str):
                if __obj.__name__ == "join" and args:
                    items = list(args[0])
                    charge(sum(size_of(i) for i in items) + len(owner) * len(items))
                    args = (items, *args[1:])
                else:
                    size = _str_method_size(owner, __obj.__name__, args)
                    if size is not None:
                        charge(size, f"a string from {__obj.__name__}")
        result = __context.call(__obj, *args, **kwargs)
        if not isinstance(__obj, Macro):
            _charge_result(result)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` / ``format_map`` with the sandbox's field lookups and sized fields."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or (
            value.__name__ not in ("format", "format_map")
        ):
            return None
        f_self: Any = value.__self__
        if not isinstance(f_self, str):
            return None
        str_type: type[str] = type(f_self)
        is_map = value.__name__ == "format_map"
        formatter: _SizedFormatter
        if isinstance(f_self, Markup):
            formatter = _SizedEscapeFormatter(self, escape=f_self.escape)
        else:
            formatter = _SizedFormatter(self)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            return str_type(formatter.vformat(f_self, args, kwargs))

        return functools.update_wrapper(wrapper, value)
