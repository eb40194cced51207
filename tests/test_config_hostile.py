"""Hostile steadyhand.yaml: whatever would fail later at run time fails `config check`
first, in one line per problem with FILE:LINE: key: what — fix, and never hangs or crashes."""

from __future__ import annotations

import os
import string
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Result, write
from worker import config
from worker.config import loading as config_check
from worker.config import reader as config_yaml
from worker.config import templates as config_templates
from worker.core.errors import Problem

CONTROL = "contains a line break — remove it: a value is one line of text"


def problems_of(tmp_path: Path, text: str | bytes) -> list[str]:
    path = tmp_path / "steadyhand.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        write(path, text)
    return [str(p).removeprefix(f"{path}:") for p in config.check(path)]


#: One person, so that `config check` does not warn of an empty config (last: lines stay).
SOMEONE = "people: [{email: ana@example.com}]\n"


def err_lines(result: Result, project: Path) -> list[str]:
    """stderr's lines, with the project folder taken off the file names."""
    return result.err.replace(f"{project}/", "").strip().splitlines()


def timed_check(path: Path) -> tuple[list[Problem], float]:
    started = time.perf_counter()
    found = config.check(path)
    return found, time.perf_counter() - started


# -- header-unsafe values ------------------------------------------------------------

PERSON = "people:\n  - email: ana@example.com\n"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (PERSON + '    name: "Ana\\r\\nBcc: all@example.com"\n', "3: people[0].name"),
        ('mail:\n  from: "Bot <bot@example.com>\\nBcc: all@example.com"\n', "2: mail.from"),
        ('people:\n  - email: "ana@example.com\\r\\n"\n', "2: people[0].email"),
        (PERSON + 'teams:\n  - name: T\n    leader: "ana@example.com\\n"\n', "5: teams[0].leader"),
        (
            PERSON + "teams:\n  - name: T\n    leader: ana@example.com\n"
            '    members: ["bo@example.com\\r\\nX: y"]\n',
            "6: teams[0].members[0]",
        ),
        (
            PERSON + 'emails:\n  reflection: {to: ["ana@example.com\\r\\nBcc: x@example.com"]}\n',
            "4: emails.reflection.to[0]",
        ),
        (
            PERSON + 'protect:\n  - rule: focus\n    for: ["ana@example.com\\u2028"]\n',
            "5: protect[0].for[0]",
        ),
        (
            'mail:\n  unsubscribe_url: "https://u.example.com/x\\r\\nBcc: y"\n',
            "2: mail.unsubscribe_url",
        ),
        (
            PERSON + '    calendar: {ics: "https://c.example.com/a.ics\\n"}\n',
            "3: people[0].calendar.ics",
        ),
        (
            'accounts:\n  - {name: g, kind: google, api_endpoint: "https://g.example.com/\\n"}\n',
            "2: accounts[0].api_endpoint",
        ),
    ],
)
def test_a_line_break_in_a_header_value_fails_config_check_at_its_line(
    tmp_path: Path, text: str, where: str
) -> None:
    assert f"{where}: {CONTROL}" in "\n".join(problems_of(tmp_path, text))


def test_config_check_prints_one_line_per_header_unsafe_value_and_exits_2(
    run_cli, project: Path
) -> None:
    write(
        project / "steadyhand.yaml",
        PERSON + '    name: "Ana\\r\\nBcc: all@example.com"\n'
        'mail:\n  from: "a@example.com\\u0000"\n',
    )
    result = run_cli("config", "check")
    assert result.code == 2
    lines = err_lines(result, project)
    assert lines[0].startswith("steadyhand.yaml:3: people[0].name: contains a line break")
    assert lines[1].startswith("steadyhand.yaml:5: mail.from: contains U+0000 — remove it")
    assert lines[2:] == ["2 problems."]
    assert "Bcc" not in result.err  # the value is not echoed into the terminal either


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("a@example.com, b@example.com", "'a@example.com, b@example.com' is more than one address"),
        ("nobody", "'nobody' is not an email address"),
    ],
)
def test_mail_from_must_be_exactly_one_address(tmp_path: Path, value: str, what: str) -> None:
    (line,) = problems_of(tmp_path, f'mail:\n  from: "{value}"\n')
    assert line == (
        f'2: mail.from: {what} — write one address, e.g. "Steadyhand <steadyhand@example.com>"'
    )


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("ftp://u.example.com/x", "'ftp://u.example.com/x' is not an http/https URL"),
        ("https:///unsubscribe", "'https:///unsubscribe' has no host name"),
        (
            "https://u.example.com/a b",
            "'https://u.example.com/a b' has a space, a quote or an angle",
        ),
        ("https://u.example.com/a>, <x", "'https://u.example.com/a>, <x' has a space"),
        ("https://u.example.com:99999/", "'https://u.example.com:99999/' is not a valid URL"),
    ],
)
def test_unsubscribe_url_must_be_an_http_url_with_a_host(
    tmp_path: Path, url: str, what: str
) -> None:
    (line,) = problems_of(tmp_path, f'mail:\n  unsubscribe_url: "{url}"\n')
    assert line.startswith(f"2: mail.unsubscribe_url: {what}")


def test_a_feed_url_that_would_not_parse_at_sync_fails_config_check(tmp_path: Path) -> None:
    lines = problems_of(
        tmp_path,
        "people:\n  - email: a@example.com\n    calendar: {ics: 'https://c.example.com:99999/a.ics'}\n"
        "  - email: b@example.com\n    calendar: {ics: 'ftp://c.example.com/b.ics'}\n",
    )
    assert lines == [
        "3: people[0].calendar.ics: 'https://c.example.com:99999/a.ics' is not a valid URL "
        "— write a file path, or a feed URL like https://calendar.example.com/team.ics",
        "5: people[1].calendar.ics: 'ftp://c.example.com/b.ics' is not an http/https/webcal URL "
        "— write a file path, or a feed URL like https://calendar.example.com/team.ics",
    ]


@pytest.mark.parametrize("name", ['" "', '""', '"\\u3000 "'])
def test_a_blank_name_is_refused(tmp_path: Path, name: str) -> None:
    (line,) = problems_of(tmp_path, PERSON + f"    name: {name}\n")
    assert line.startswith("3: people[0].name: the name is blank — write the person's name")


def test_a_person_with_a_good_name_still_loads(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", PERSON + "    name: Ana Lima\n")
    (ana,) = config.load(path).persons()
    assert ana.name == "Ana Lima"


def test_a_time_zone_that_is_a_folder_of_zones_is_one_line(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "timezone: America\n") == [
        "1: timezone: unknown time zone 'America' — did you mean 'America/Nuuk'?"
    ]


def test_a_store_or_queue_run_could_not_open_fails_config_check(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "store: nonsense\nqueue: amqp://mq.example.com\n") == [
        "1: store: 'nonsense' is not supported — write sqlite:///var/steadyhand.db or "
        "postgresql://user@host/db (it starts with sqlite:/// or postgresql:// or "
        "postgresql+psycopg://)",
        "2: queue: 'amqp://mq.example.com' is not supported — write sqlite:///var/queue.db or "
        "redis://host:6379/0 (it starts with sqlite:/// or redis:// or rediss://)",
    ]


# -- durations and numbers ------------------------------------------------------------


def test_durations_out_of_range_say_the_maximum(tmp_path: Path) -> None:
    lines = problems_of(
        tmp_path,
        "sync: {past: 4w, future: 99999999w, every: 99999999999999999999d}\n"
        "emails:\n  reflection: {within: 0m}\n  followup: {delay: 8d}\n"
        "overload: {back_to_back_gap: 25h}\n",
    )
    assert lines == [
        "1: sync.every: '99999999999999999999d' is too long — the most is 1d",
        "1: sync.future: '99999999w' is too long — the most is 260w (5 years)",
        "3: emails.reflection.within: '0m' is too short — the least is 1m",
        "4: emails.followup.delay: '8d' is too long — the most is 7d",
        "5: overload.back_to_back_gap: '25h' is too long — the most is 1d",
    ]


def test_sync_every_must_be_at_least_a_minute(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "sync: {every: 30s}\n") == [
        "1: sync.every: '30s' is too short — the least is 1m"
    ]


def test_the_largest_durations_allowed_still_load(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "sync: {past: 260w, future: 260w, every: 1d}\n")
    sync = config.load(path).sync
    assert (sync.past, sync.every) == (timedelta(weeks=260), timedelta(days=1))


@given(
    digits=st.text(string.digits, min_size=1, max_size=5000),
    unit=st.sampled_from("wdhms"),
    spaces=st.text(" \t", max_size=50),
)
@settings(max_examples=200, deadline=None)
def test_parse_duration_never_overflows_whatever_the_digits(
    digits: str, unit: str, spaces: str
) -> None:
    text = f"{spaces}{digits}{spaces}{unit}{spaces}"
    try:
        span = config.parse_duration(text, weeks=True)
    except ValueError as exc:
        assert " — " in str(exc)
    else:
        assert span <= config.MAX_ANY_DURATION


def test_a_duration_regex_does_not_backtrack_on_long_whitespace() -> None:
    started = time.perf_counter()
    for text in ("1d" + " " * 100_000 + "x", "1" * 100_000 + "x", "1h " * 30_000):
        with pytest.raises(ValueError, match=" — "):
            config.parse_duration(text)
    assert time.perf_counter() - started < 1


def test_numbers_out_of_range_say_the_bound(tmp_path: Path) -> None:
    lines = problems_of(
        tmp_path,
        "mail:\n  max_per_day: 1000000000\n  transport: smtp\n"
        "  smtp: {host: h, port: 70000, timeout: .inf}\n"
        "privacy: {min_team_size: 100000}\noverload: {max_chain_minutes: 99999}\n"
        "protect:\n  - {rule: coaching, per_week: 1000000}\n",
    )
    assert lines == [
        "2: mail.max_per_day: 1000000000 is too large — the most is 100",
        "4: mail.smtp.port: 70000 is too large — the most is 65535",
        "4: mail.smtp.timeout: inf is not a finite number — write a number",
        "5: privacy.min_team_size: 100000 is too large — the most is 10000",
        "6: overload.max_chain_minutes: 99999 is too large — the most is 1440",
        "8: protect[0].per_week: 1000000 blocks is out of range — write 0 to 100, "
        "or a duration goal like 2h",
    ]


def test_a_number_with_thousands_of_digits_is_one_line(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "mail:\n  max_per_day: " + "9" * 5000 + "\n") == [
        "2: a number with more than 1000 digits — write a smaller number"
    ]


# -- the YAML itself ------------------------------------------------------------------


def billion_laughs() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def merge_bomb() -> str:
    lines = ["m0: &m0 {k: v}"]
    lines += [f"m{i}: &m{i}\n  <<: [" + ", ".join([f"*m{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text", [billion_laughs(), merge_bomb()], ids=["aliases", "merge-keys"])
def test_an_alias_bomb_answers_in_under_a_second_with_one_line(
    run_cli, project: Path, text: str
) -> None:
    write(project / "steadyhand.yaml", text)
    started = time.perf_counter()
    result = run_cli("config", "check")
    assert time.perf_counter() - started < 1
    assert result.code == 2
    assert err_lines(result, project) == [
        "error: steadyhand.yaml:1: anchors and aliases are not supported in steadyhand.yaml "
        "— write the values out"
    ]


def test_an_alias_further_down_is_refused_at_its_line(tmp_path: Path) -> None:
    text = PERSON + "teams:\n  - name: T\n    leader: ana@example.com\n    members: *people\n"
    assert problems_of(tmp_path, text) == [
        "6: anchors and aliases are not supported in steadyhand.yaml — write the values out"
    ]


def test_a_plain_merge_key_is_refused(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "sync:\n  <<: {past: 4w}\n") == [
        "2: merge keys (<<) are not supported — write the values out"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "people: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "people: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n",
        "".join(" " * i + f"k{i}:\n" for i in range(5_000)),
    ],
    ids=["flow-lists", "flow-mappings", "block-mappings"],
)
def test_deep_nesting_is_one_line_not_a_recursion_error(run_cli, project: Path, text: str) -> None:
    write(project / "steadyhand.yaml", text)
    started = time.perf_counter()
    result = run_cli("config", "check")
    assert time.perf_counter() - started < 2
    assert result.code == 2
    (line,) = err_lines(result, project)
    assert "nested too deeply (more than 32 levels)" in line
    assert line.startswith("error: steadyhand.yaml:")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b"timezone: UTC\npeople:\n  - email: a\x00@example.com\n",
            "3: the file holds a control character (U+0000) — remove it: only tabs and "
            "line breaks may appear",
        ),
        (b"timezone: UTC\n\x1b[31mred: x\n", "2: the file holds a control character (U+001B)"),
        (
            b"timezone: UTC\n\n# caf\xe9\n",
            "3: the file is not UTF-8 text (byte 0xe9) — save it as UTF-8",
        ),
        (b"\xff\xfet\x00z\x00", "1: the file is not UTF-8 text (byte 0xff)"),
    ],
    ids=["nul", "escape", "latin-1", "utf-16"],
)
def test_control_bytes_and_bad_encoding_are_one_line_with_the_line_number(
    run_cli, project: Path, data: bytes, expected: str
) -> None:
    (project / "steadyhand.yaml").write_bytes(data)
    result = run_cli("config", "check")
    assert result.code == 2
    (line,) = err_lines(result, project)
    assert line.startswith(f"error: steadyhand.yaml:{expected}")


def test_a_file_over_the_size_limit_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "steadyhand.yaml"
    with path.open("wb") as file:
        file.write(b"# ")
        file.write(b"x" * config_yaml.MAX_BYTES)
    found, took = timed_check(path)
    assert [str(p) for p in found] == [
        f"{path}: the file is larger than 16 MB — steadyhand.yaml is read only up to that size: "
        "split the people out or trim it"
    ]
    assert took < 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\n---\nb: 2\n", "2: a second YAML document — keep one document in the file"),
        (
            "timezone: UTC\ntimezone: Europe/Berlin\n",
            "2: key 'timezone' is given twice (first on line 1) — keep one",
        ),
        (
            "timezone: !!python/object/apply:os.system [ls]\n",
            "1: YAML tags (tag:yaml.org,2002:python/object/apply:os.system) are not supported — remove it",
        ),
        ("? [a, b]\n: c\n", "1: a key must be plain text — write the key as a word"),
    ],
)
def test_yaml_features_steadyhand_does_not_use_are_refused_in_one_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert problems_of(tmp_path, text) == [expected]


# -- linear checks ----------------------------------------------------------------------


def many_people(n: int, typo_every: int = 0) -> str:
    """n people, one team of all of them, and two audiences listing some of them."""
    lines = ["timezone: Europe/Berlin", "people:"]
    for i in range(n):
        lines += [f"  - email: p{i}@example.com", f"    name: Person {i}"]
    lines += ["teams:", "  - name: Everyone", "    leader: p0@example.com", "    members:"]
    for i in range(1, n):
        typo = typo_every and i % typo_every == 0
        lines.append(f"      - {'q' if typo else 'p'}{i}@example.com")
    some = ", ".join(f"p{i}@example.com" for i in range(0, n, 10))
    lines += ["protect:", "  - rule: focus", f"    for: [{some}]", "    per_day: 2h"]
    lines += ["emails:", f"  reflection: {{to: [{some}]}}"]
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(
    not yaml.__with_libyaml__, reason="PyYAML without libyaml: the pure-Python parser is slower"
)
def test_100000_people_with_a_team_and_audiences_check_in_under_10_seconds(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "steadyhand.yaml", many_people(100_000))
    found, took = timed_check(path)
    assert found == []
    assert took < 10, f"config check of 100,000 people took {took:.1f} s"


def test_many_unknown_members_are_listed_quickly_with_a_bounded_number_of_hints(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "steadyhand.yaml", many_people(20_000, typo_every=2))
    found, took = timed_check(path)
    assert took < 10
    assert len(found) == config.MAX_PROBLEMS + 1
    typos = len(range(2, 20_000, 2))
    assert found[-1].what == f"{typos - config.MAX_PROBLEMS} more problems not listed"
    hints = [p for p in found if p.fix.startswith("did you mean")]
    assert 0 < len(hints) <= config.MAX_SUGGESTIONS
    assert found[0].fix == "did you mean p2@example.com?"


def test_a_file_with_too_many_values_is_refused_where_it_passes_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_yaml, "MAX_NODES", 100)
    text = "people:\n" + "".join(f"  - email: p{i}@example.com\n" for i in range(60))
    assert problems_of(tmp_path, text) == [
        "34: the file holds more than 100 keys and values — steadyhand reads at most that many "
        "(about 130,000 people with a name each): trim it"
    ]


def test_a_million_bad_items_list_the_first_problems_and_count_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_check, "MAX_PROBLEMS", 10)
    path = write(tmp_path / "steadyhand.yaml", "people: [" + "a, " * 50 + "]\nbad: 1\n")
    found = config.check(path)
    assert [p.path for p in found[:10]] == [f"people[{i}]" for i in range(10)]
    assert found[10].what == "41 more problems not listed"
    assert len(found) == 11


def test_a_typo_in_a_small_team_still_gets_its_hint(tmp_path: Path) -> None:
    text = PERSON + "teams:\n  - name: T\n    leader: ana@exmple.com\n"
    assert problems_of(tmp_path, text) == [
        "5: teams[0].leader: ana@exmple.com is not listed under people: — did you mean "
        "ana@example.com?"
    ]


# -- templates and warnings -------------------------------------------------------------


def test_a_template_that_breaks_the_compiler_is_one_problem_not_a_crash(
    run_cli, project: Path
) -> None:
    write(project / "tpl" / "reflection.txt.j2", "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}")
    write(project / "steadyhand.yaml", "mail: {templates: tpl}\n" + SOMEONE)
    result = run_cli("config", "check")
    assert result.code == 2
    assert err_lines(result, project) == [
        "error: tpl/reflection.txt.j2: template error: it nests too deep, or includes, "
        "extends or calls itself without end — remove the self-reference or the deep nesting"
    ]


def test_a_templates_folder_name_too_long_for_the_file_system_is_one_problem(
    run_cli, project: Path
) -> None:
    write(project / "steadyhand.yaml", f"mail: {{templates: {'t' * 5000}}}\n" + SOMEONE)
    result = run_cli("config", "check")
    assert result.code == 2
    (line,) = err_lines(result, project)
    assert line.startswith("error: steadyhand.yaml: mail.templates: templates folder ")
    assert line.endswith("does not exist — create it or fix the path")


def test_any_failure_inside_the_template_check_is_one_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker import mail

    def explode(env: object) -> list[Problem]:
        raise MemoryError

    monkeypatch.setattr(mail, "check_templates", explode)
    settings = config.load(write(tmp_path / "c.yaml", "timezone: UTC\n"))
    (problem,) = config.template_problems(settings)
    assert problem.what == "the templates cannot be compiled (MemoryError)"


def test_a_template_check_that_takes_too_much_memory_or_time_is_one_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = config.load(write(tmp_path / "c.yaml", "timezone: UTC\n"))

    def hog(folder: Path | None) -> list[Problem]:
        block = bytearray(8 * 1024**3)  # past the child's memory bound: MemoryError there
        return [Problem(str(len(block)))]

    monkeypatch.setattr(config_templates, "_compile_templates", hog)
    (problem,) = config.template_problems(settings, memory=256 * 1024**2)
    assert problem.what == "the templates cannot be compiled (MemoryError)"

    def hang(folder: Path | None) -> list[Problem]:
        time.sleep(30)  # a compile that never ends; the parent must not wait for it
        return []

    monkeypatch.setattr(config_templates, "_compile_templates", hang)
    started = time.perf_counter()
    (problem,) = config.template_problems(settings, seconds=0.5)
    assert problem.what == "the templates cannot be compiled (took longer than 0.5 s)"
    assert time.perf_counter() - started < 5

    def crash(folder: Path | None) -> list[Problem]:
        os._exit(9)

    monkeypatch.setattr(config_templates, "_compile_templates", crash)
    (problem,) = config.template_problems(settings)
    assert problem.what == "the templates cannot be compiled (ran out of memory or crashed)"


def test_unsubscribe_url_without_a_secret_key_is_a_warning_and_exit_0(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEADYHAND_SECRET_KEY", raising=False)
    write(
        project / "steadyhand.yaml",
        "mail:\n  unsubscribe_url: https://u.example.com/unsub\n" + SOMEONE,
    )
    result = run_cli("config", "check")
    assert result.code == 0
    assert err_lines(result, project) == [
        "warning: steadyhand.yaml:2: mail.unsubscribe_url: mail.unsubscribe_url is set but "
        "STEADYHAND_SECRET_KEY is not: emails will carry no unsubscribe link (their footer "
        "names `steadyhand unsubscribe`) — set "
        "STEADYHAND_SECRET_KEY (the same key that encrypts tokens) in the worker's environment"
    ]
    assert "OK" in result.out
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", "k" * 44)
    result = run_cli("config", "check")
    assert (result.code, result.err) == (0, "")


def test_the_warning_comes_with_the_problems_when_there_are_some(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEADYHAND_SECRET_KEY", raising=False)
    write(
        project / "steadyhand.yaml",
        "mail:\n  unsubscribe_url: https://u.example.com/unsub\n  max_per_day: 0\n" + SOMEONE,
    )
    result = run_cli("config", "check")
    assert result.code == 2
    lines = err_lines(result, project)
    assert lines[0].startswith("warning: steadyhand.yaml:2: mail.unsubscribe_url:")
    assert lines[1] == (
        "error: steadyhand.yaml:3: mail.max_per_day: 0 is too small — the least is 1"
    )


def test_a_bug_in_the_checks_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> list[Problem]:
        raise KeyError("boom")

    monkeypatch.setattr(config_check, "_reference_problems", broken)
    path = write(tmp_path / "c.yaml", "timezone: UTC\n")
    (problem,) = config.check(path)
    assert problem.what == "steadyhand could not check this file (KeyError)"


# -- property: nothing makes config check raise -----------------------------------------

KEYS = sorted(config._all_keys())
SCALARS = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(
        [
            "~",
            "true",
            ".inf",
            ".nan",
            "-0",
            "0x1F",
            "1e999",
            "99999999w",
            "'x'",
            "[",
            "{",
            "&a",
            "*a",
            "<<",
            "!!binary x",
            "|",
            ">",
            "- ",
            "? ",
        ]
    ),
)


@st.composite
def yamlish(draw: st.DrawFn) -> str:
    """Text shaped like steadyhand.yaml: known keys, random nesting, random scalars."""
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 12))):
        depth = draw(st.integers(0, 6))
        key = draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)))
        dash = draw(st.sampled_from(["", "- "]))
        value = draw(st.one_of(st.just(""), SCALARS))
        lines.append(f"{'  ' * depth}{dash}{key}: {value}")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))


def assert_answers(path: Path) -> None:
    found, took = timed_check(path)
    assert isinstance(found, list)
    assert all(isinstance(p, Problem) for p in found)
    for problem in found:
        assert "\n" not in str(problem) and "\r" not in str(problem)
        assert problem.file == str(path)
        assert problem.line is not None or not problem.path  # a key's problem has its line
    assert took < 5


@given(text=yamlish())
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_yaml_ish_text_never_makes_config_check_raise(tmp_path: Path, text: str) -> None:
    path = tmp_path / "steadyhand.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    assert_answers(path)


@given(data=st.binary(max_size=400))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_random_bytes_never_make_config_check_raise(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "steadyhand.yaml"
    path.write_bytes(data)
    assert_answers(path)


@given(
    value=st.one_of(SCALARS, st.text(alphabet=st.characters(codec="utf-8"), max_size=40)),
    key=st.sampled_from(
        [
            "people[0].name",
            "people[0].email",
            "people[0].timezone",
            "mail.from",
            "mail.unsubscribe_url",
            "sync.every",
            "sync.future",
            "mail.max_per_day",
            "people[0].working_hours.mon",
            "emails.reflection.to",
            "protect[0].per_day",
            "people[0].calendar.ics",
            "teams[0].leader",
        ]
    ),
)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_random_scalars_in_known_keys_never_make_config_check_raise(
    tmp_path: Path, value: str, key: str
) -> None:
    quoted = '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    base = {
        "people[0].name": f"people:\n  - email: a@example.com\n    name: {quoted}\n",
        "people[0].email": f"people:\n  - email: {quoted}\n",
        "people[0].timezone": f"people:\n  - email: a@example.com\n    timezone: {quoted}\n",
        "people[0].working_hours.mon": "people:\n  - email: a@example.com\n"
        f"    working_hours: {{mon: {quoted}}}\n",
        "people[0].calendar.ics": f"people:\n  - email: a@example.com\n    calendar: {{ics: {quoted}}}\n",
        "mail.from": f"mail:\n  from: {quoted}\n",
        "mail.unsubscribe_url": f"mail:\n  unsubscribe_url: {quoted}\n",
        "mail.max_per_day": f"mail:\n  max_per_day: {value if value.strip() else quoted}\n",
        "sync.every": f"sync:\n  every: {quoted}\n",
        "sync.future": f"sync:\n  future: {quoted}\n",
        "emails.reflection.to": f"emails:\n  reflection: {{to: [{quoted}]}}\n",
        "protect[0].per_day": f"protect:\n  - {{rule: focus, per_day: {quoted}}}\n",
        "teams[0].leader": f"teams:\n  - {{name: T, leader: {quoted}}}\n",
    }[key]
    path = tmp_path / "steadyhand.yaml"
    path.write_text(base, encoding="utf-8")
    assert_answers(path)
