"""A hostile admin's templates end as one clear refusal, never a crash, hang or memory
blow-up (issue 10, item 4).

Each template below is put in a team's ``mail.templates`` folder as ``reflection.txt.j2``.
``config check`` must refuse it in one line naming the file, in seconds; rendering it
for a send must raise a TemplateProblem naming it (the row then fails with that reason,
tests/test_row_isolation.py). The worst ones are also run in a subprocess of their own
to measure peak memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import DictLoader, StrictUndefined

from tests.conftest import ROOT, write
from worker import budget, mail, sandbox
from worker.programs import samples

X = "Subject: x\n"
HOSTILE: dict[str, str] = {
    # huge ranges and loops
    "range 10**12": "{{ range(10**12)|list }}",
    "loop over range 10**12": "{% for i in range(10**12) %}x{% endfor %}",
    "three nested 10**5 loops, output": (
        "{% for a in range(10**5) %}{% for b in range(10**5) %}{% for c in range(10**5) %}"
        "x{% endfor %}{% endfor %}{% endfor %}"
    ),
    "three nested 10**5 loops, silent": (
        "{% for a in range(10**5) %}{% for b in range(10**5) %}{% for c in range(10**5) %}"
        "{% endfor %}{% endfor %}{% endfor %}"
    ),
    "two nested loops, silent": (
        "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}"
    ),
    "slow work in each round": "{% for i in range(10**5) %}{{ range(10**5)|sum }}{% endfor %}",
    # recursion
    "self-calling macro": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "mutual macros": (
        "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}"
    ),
    "doubling macro": "{% macro d(s) %}{{ d(s ~ s) }}{% endmacro %}{{ d('x') }}",
    "3,000 nested parentheses": "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
    "include of itself": '{% include "reflection.txt.j2" %}',
    "extends loop": '{% extends "reflection.txt.j2" %}',
    # repetition and padding
    "'x' * 10**10": "{{ 'x' * 10**10 }}",
    "[1] * 10**9": "{{ [1] * 10**9 }}",
    "'%s' padding": "{{ '%999999999s' % 1 }}",
    "'%*s' padding": "{{ '%*s' % (10**9, 'x') }}",
    "format padding": "{{ '{:>999999999}'.format(1) }}",
    "format precision": "{{ '{:.999999999f}'.format(1.0) }}",
    "|format padding": "{{ '%999999999d'|format(1) }}",
    "|center(10**9)": '{{ "x"|center(10**9) }}',
    "|indent(10**9)": '{{ "a\\nb"|indent(10**9) }}',
    "|wordwrap(10**9)": '{{ "x y"|wordwrap(10**9) }}',
    "|wordwrap width 1 on a long word": "{{ ('x' * 500000)|wordwrap(1) }}",
    "|wordwrap huge wrapstring": "{{ ('x y ' * 100000)|wordwrap(1, wrapstring='z' * 1000) }}",
    "str.ljust(10**9)": "{{ 'x'.ljust(10**9) }}",
    "str.expandtabs": "{{ ('\\t' * 100000).expandtabs(99999) }}",
    "int.to_bytes": "{{ (1).to_bytes(10**9, 'big') }}",
    "lipsum(10**6)": "{{ lipsum(10**6) }}",
    "|replace blow-up": "{{ ('x' * 1000)|replace('x', 'x' * 1000)|replace('x', 'x' * 1000) }}",
    "str.replace blow-up": "{{ ('x' * 1000).replace('x', 'y' * 10000) }}",
    "|join of many centred strings": "{{ range(10**5)|map('string')|map('center', 10**5)|join }}",
    "filter block of big output": (
        "{% filter upper %}{% for i in range(10**5) %}{{ 'x' * 10**5 }}{% endfor %}{% endfilter %}"
    ),
    # growth through set, namespace, dict, cycler, joiner, loop.cycle
    "{% set %} doubling": (
        "{% set a = 'x' * 10**5 %}{% set b = a + a %}{% set c = b + b %}{% set d = c + c %}"
        "{% set e = d + d %}{% set f = e + e %}{{ f }}"
    ),
    "namespace doubling loop": (
        "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}"
    ),
    "dict growth": (
        "{% set ns = namespace(d={}) %}{% for i in range(10**5) %}"
        "{% set ns.d = dict(ns.d, **{('k' ~ i): i}) %}{% endfor %}{{ ns.d|length }}"
    ),
    "cycler abuse": (
        "{% set c = cycler(*range(10**5)) %}{% for i in range(10**5) %}{% for j in range(10**5) %}"
        "{{ c.next() }}{% endfor %}{% endfor %}"
    ),
    "joiner abuse": (
        "{% set j = joiner('x' * 10**6) %}{% for i in range(10**5) %}{{ j() }}{% endfor %}"
    ),
    "loop.cycle abuse": (
        "{% for i in range(10**5) %}{% for j in range(10**5) %}{{ loop.cycle('a', 'b') }}"
        "{% endfor %}{% endfor %}"
    ),
    # numbers
    # (Jinja2's ** groups to the left: 10**10**8 is (10**10)**8, harmless; these are not)
    "x**x**x": "{% set x = 9 %}{{ x ** (x ** x) }}",
    "10**10**8": "{{ 10 ** (10 ** 8) }}",
    "int too long to print": "{{ 10**5000 }}",
    "kept splits of a long string": (
        "{% set s = 'xy ' * 333333 %}{% set a = s.split() %}{% set b = s.split() %}"
        "{% set c = s.split() %}{% set d = s.split() %}{{ a|length + b|length }}"
    ),
    "|sum over a huge range": "{{ range(10**12)|sum }}",
    "|sum of lists": "{{ ([[1]] * 10**5)|sum(start=[]) }}",
    "|batch": "{{ [1]|batch(10**9, 'x')|list }}",
    "|batch(1) of a long string": "{{ ('x' * 10**6)|batch(1)|list|length }}",
    "|slice": "{{ [1]|slice(10**9)|list }}",
    "|unique on a huge range": "{{ range(10**12)|unique|list }}",
    # attribute walks out of the sandbox
    ".__class__": "{{ ''.__class__ }}",
    "__subclasses__": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "__globals__": "{{ lipsum.__globals__ }}",
    "cycler.__init__.__globals__": "{{ cycler.__init__.__globals__.os }}",
    "joiner.__init__.__globals__": "{{ joiner.__init__.__globals__ }}",
    "self._TemplateReference__context": "{{ self._TemplateReference__context }}",
    "loop's internals": "{% for i in [1] %}{{ loop._iterator }}{% endfor %}",
}
ESCAPES = {k for k in HOSTILE if "__" in HOSTILE[k] or "._" in HOSTILE[k]}
#: The worst for memory before the budget: measured in a process of their own.
WORST = [
    "kept splits of a long string",
    "|batch(1) of a long string",
    "'x' * 10**10",
    "10**10**8",
    "doubling macro",
    "lipsum(10**6)",
    "|batch",
    "three nested 10**5 loops, output",
    "|replace blow-up",
    "filter block of big output",
]


def team_templates(folder: Path, body: str) -> Path:
    write(folder / "reflection.txt.j2", X + body + "\n")
    write(folder / "reflection.html.j2", "<p>{{ first_name }}</p>\n")
    return folder


@pytest.fixture(params=sorted(HOSTILE), ids=sorted(HOSTILE))
def hostile(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each hostile template, with a smaller time and loop budget than the defaults so
    that the whole set runs in seconds (the memory test below uses the defaults)."""
    monkeypatch.setattr(budget, "MAX_RENDER_SECONDS", 0.5)
    monkeypatch.setattr(budget, "MAX_LOOP_ROUNDS", 20_000)
    return str(request.param)


def test_there_are_at_least_26_kinds() -> None:
    assert len(HOSTILE) >= 26


def test_config_check_refuses_a_hostile_template_in_one_line(
    run_cli, project: Path, hostile: str
) -> None:
    team_templates(project / "tpl", HOSTILE[hostile])
    write(project / "steadyhand.yaml", "mail: {templates: tpl}\n")
    started = time.monotonic()
    result = run_cli("config", "check")
    elapsed = time.monotonic() - started
    assert result.code == 2, result.out
    assert elapsed < 10, f"{hostile}: config check took {elapsed:.1f} s"
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert any(str(project / "tpl" / "reflection.txt.j2") in line for line in lines), result.err
    assert "Traceback" not in result.err and len(lines) <= 3, result.err


def test_rendering_a_hostile_template_for_a_send_is_a_template_problem(
    tmp_path: Path, hostile: str
) -> None:
    env = mail.environment(team_templates(tmp_path / "tpl", HOSTILE[hostile]))
    started = time.monotonic()
    with pytest.raises(mail.TemplateProblem) as info:
        mail.render(env, "reflection", samples.context("reflection") or {})
    assert time.monotonic() - started < 10
    (problem,) = info.value.problems
    assert str(problem.file).endswith("reflection.txt.j2")
    assert "\n" not in problem.what and len(problem.what) < 400
    if hostile in ESCAPES:  # a SecurityError from the sandbox, not a budget or a crash
        assert "unsafe" in problem.what or "not safely callable" in problem.what, problem.what


def test_the_budget_leaves_every_shipped_template_alone() -> None:
    env = mail.environment()
    assert mail.check_templates(env) == []
    for program in ("reflection", "recognition", "recognize", "followup", "overload", "digest"):
        subject, text, html = mail.render(env, program, samples.context(program) or {})
        assert subject and text and html


def test_a_render_stops_at_its_deadline(tmp_path: Path) -> None:
    body = "{% for i in range(10**5) %}{{ range(10**4)|sum }}{% endfor %}"
    env = mail.environment(team_templates(tmp_path / "tpl", body))
    started = time.monotonic()
    with (
        pytest.raises(mail.TemplateProblem, match=r"ran for more than 0\.2 s"),
        budget.budget(0.2),
    ):
        mail.render(env, "reflection", samples.context("reflection") or {})
    assert time.monotonic() - started < 2


PROBE = """
import json, resource, sys, time
from pathlib import Path
from worker import mail
from worker.programs import samples
env = mail.environment(Path(sys.argv[1]))
started = time.monotonic()
try:
    mail.render(env, "reflection", samples.context("reflection"))
    outcome = "rendered"
except mail.TemplateProblem as exc:
    outcome = exc.problems[0].what
# VmHWM: this process's own peak (ru_maxrss keeps the forking parent's after exec)
status = Path("/proc/self/status")
hwm = [l for l in status.read_text().splitlines() if l.startswith("VmHWM")] if status.exists() else []
peak_kb = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - started,
                  "peak_mb": peak_kb / 1024}))
"""


@pytest.mark.parametrize("name", WORST)
def test_the_worst_templates_stay_small_in_memory(tmp_path: Path, name: str) -> None:
    folder = team_templates(tmp_path / "tpl", HOSTILE[name])
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    print(f"{name}: {figures}")
    assert figures["outcome"] != "rendered"
    assert figures["peak_mb"] < 150, figures
    assert figures["seconds"] < 10, figures


# -- any composition of the pieces ends in a budget ------------------------------------

NUMBERS = st.sampled_from(["0", "1", "2", "9", "1000", "10**5", "10**9", "10**12", "(10**(10**8))"])
LEAVES = st.one_of(NUMBERS, st.sampled_from(["'x'", "'x' * 1000", "[1, 2]", "name", "range(3)"]))


def _grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(inner, inner)
    return st.one_of(
        pair.map(lambda p: f"({p[0]} * {p[1]})"),
        pair.map(lambda p: f"({p[0]} ** {p[1]})"),
        pair.map(lambda p: f"({p[0]} ~ {p[1]})"),
        pair.map(lambda p: f"({p[0]} + {p[1]})"),
        pair.map(lambda p: f"('%' ~ {p[1]} ~ 's') % {p[0]}"),
        pair.map(lambda p: f"(({p[0]})|string|center({p[1]}))"),
        pair.map(lambda p: f"(({p[0]})|string|replace('x', ({p[1]})|string))"),
        pair.map(lambda p: f"([{p[0]}] * {p[1]})"),
        inner.map(lambda e: f"range({e})"),
        inner.map(lambda e: f"(({e})|list|join)"),
        inner.map(lambda e: f"lipsum({e})"),
    )


EXPRESSIONS = st.recursive(LEAVES, _grow, max_leaves=6)
BODIES = st.recursive(
    EXPRESSIONS.map(lambda e: "{{ " + e + " }}"),
    lambda inner: st.one_of(
        st.tuples(EXPRESSIONS, inner).map(lambda p: f"{{% for i in {p[0]} %}}{p[1]}{{% endfor %}}"),
        inner.map(lambda b: f"{{% macro m() %}}{b}{{{{ m() }}}}{{% endmacro %}}{{{{ m() }}}}"),
        st.tuples(inner, inner).map("".join),
    ),
    max_leaves=4,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES)
def test_any_mix_of_loops_repeats_and_padding_ends_in_the_budget(body: str) -> None:
    env = sandbox.BudgetedEnvironment(
        loader=DictLoader({"reflection.txt.j2": X + body, "reflection.html.j2": "<p></p>"}),
        undefined=StrictUndefined,
    )
    started = time.monotonic()
    try:
        mail.render(env, "reflection", {"name": "Ana"})
    except mail.TemplateProblem as exc:
        (problem,) = exc.problems
        assert problem.file == "reflection.txt.j2" and "\n" not in problem.what
    assert time.monotonic() - started < 5, body
