"""`steadyhand analyze`: the load report as a table, JSON (docs/metrics.md), CSV and HTML."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, write

DEMO = ROOT / "config" / "demo"
NOW = "2026-11-05T16:45:00+01:00"


@pytest.fixture
def demo_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo config and calendars copied into a working folder; nothing synced yet."""
    shutil.copytree(DEMO, project / "demo")
    shutil.copyfile(ROOT / "config" / "demo.yaml", project / "steadyhand.yaml")
    monkeypatch.setenv("STEADYHAND_NOW", NOW)
    return project


def test_json_is_exactly_the_design_shape_and_syncs_first(run_cli, demo_project: Path) -> None:
    result = run_cli("analyze", "--week", "2026-W45", "--format", "json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert set(report) == {"period", "people", "teams"}
    assert report["period"] == {"start": "2026-11-02", "end": "2026-11-08"}
    ana = report["people"][0]
    assert set(ana) == {"email", "timezone", "attendees", "meetings_from", "days", "week"}
    assert (ana["email"], ana["timezone"]) == ("ana@example.com", "Europe/Berlin")
    assert (ana["attendees"], ana["meetings_from"]) == ("present", "attendees")
    assert set(ana["week"]) == {"meeting_minutes", "overloaded_days"}
    thursday = next(d for d in ana["days"] if d["date"] == "2026-11-05")
    assert list(thursday) == [
        "date",
        "working_minutes",
        "meeting_minutes",
        "busy_minutes",
        "meeting_load",
        "after_hours_meeting_minutes",
        "double_booked_minutes",
        "longest_chain_minutes",
        "focus_minutes",
        "fragmented_minutes",
        "away",
        "overloaded",
        "reasons",
    ]
    assert thursday["working_minutes"] == 450
    assert thursday["longest_chain_minutes"] == 240
    assert thursday["overloaded"] is True
    assert thursday["reasons"] == ["meeting_load", "back_to_back", "no_focus"]
    eli = next(p for p in report["people"] if p["email"] == "eli@example.com")
    assert next(d for d in eli["days"] if d["date"] == "2026-11-02")["away"] is True
    (team,) = report["teams"]
    assert team["name"] == "Platform"
    assert team["above_1_5x_median"] == ["ana@example.com"]  # 16.25 h against a median of 10.25 h
    assert team["max_over_median"] == pytest.approx(16.25 / 10.25)
    assert len(report["people"]) == 5


def test_table_marks_overloaded_days_and_lists_their_reasons(run_cli, demo_project: Path) -> None:
    result = run_cli("analyze", "--from", "2026-11-02", "--to", "2026-11-06")
    assert result.code == 0, result.err
    assert "6.8!" in next(li for li in result.out.splitlines() if "Ana Lima" in li)
    assert (
        "Ana Lima, Thu 05 Nov: meeting_load (83 % of working time in meetings), "
        "back_to_back (240 min back to back), no_focus (0 min of focus time)"
    ) in result.out
    assert (
        "Bo Berg, Tue 03 Nov: after_hours (60 min of meetings outside working hours)" in result.out
    )


def test_csv_uses_viva_insights_column_names(run_cli, demo_project: Path) -> None:
    result = run_cli(
        "analyze", "--week", "2026-W45", "--person", "ana@example.com", "--format", "csv"
    )
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert len(rows) == 7
    thursday = next(r for r in rows if r["MetricDate"] == "2026-11-05")
    assert thursday["PersonId"] == "ana@example.com"
    assert thursday["Meeting_hours"] == "6.75"
    assert thursday["After_hours_meeting_hours"] == "0.5"
    assert thursday["Conflicting_meeting_hours"] == "0"
    assert thursday["Uninterrupted_hours"] == "0"
    assert thursday["reasons"] == "meeting_load;back_to_back;no_focus"


def test_one_person_has_no_team_figures(run_cli, demo_project: Path) -> None:
    result = run_cli(
        "analyze", "--week", "2026-W45", "--person", "bo@example.com", "--format", "json"
    )
    report = json.loads(result.out)
    assert [p["email"] for p in report["people"]] == ["bo@example.com"]
    assert report["teams"] == []


def test_team_figures_only_for_teams_big_enough(run_cli, demo_project: Path) -> None:
    config = demo_project / "steadyhand.yaml"
    config.write_text(config.read_text().replace("min_team_size: 5", "min_team_size: 6"))
    result = run_cli("analyze", "--week", "2026-W45", "--team", "Platform", "--format", "json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert len(report["people"]) == 5 and report["teams"] == []


def test_html_is_written_to_a_file(run_cli, demo_project: Path) -> None:
    target = demo_project / "out" / "load.html"
    result = run_cli("analyze", "--week", "2026-W45", "--format", "html", "-o", str(target))
    assert result.code == 0, result.err
    page = target.read_text()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "Ana Lima" in page and "2026-11-02" in page
    assert f"wrote {target}" in result.err


def test_a_period_outside_the_sync_window_is_read_for_the_analysis(
    run_cli, demo_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEADYHAND_NOW", "2027-03-01T10:00:00+01:00")  # months later
    result = run_cli(
        "analyze", "--week", "2026-W45", "--person", "ana@example.com", "--format", "json"
    )
    days = json.loads(result.out)["people"][0]["days"]
    assert next(d for d in days if d["date"] == "2026-11-05")["meeting_minutes"] == 405


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--week", "48"), "--week '48' is not an ISO week — write it like 2026-W48"),
        (("--from", "2026-11-02"), "--from and --to go together — give both dates"),
        (
            ("--from", "2026-11-09", "--to", "2026-11-02"),
            "--to 2026-11-02 is before --from 2026-11-09 — swap them",
        ),
        (("--format", "pdf"), "--format 'pdf' is not known — use table, json, csv or html"),
        (("--team", "Plaform"), "no team named 'Plaform' — teams: Platform"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(
    run_cli, demo_project: Path, args: tuple[str, ...], message: str
) -> None:
    result = run_cli("analyze", *args)
    assert result.code == 2
    assert result.err.strip() == f"error: {message}"


def test_analyze_with_an_unreadable_calendar_warns_and_goes_on(run_cli, demo_project: Path) -> None:
    write(demo_project / "demo" / "bo.ics", "garbage")
    result = run_cli("analyze", "--week", "2026-W45", "--format", "json")
    assert result.code == 0
    assert "warning:" in result.err and "bo.ics" in result.err
    assert len(json.loads(result.out)["people"]) == 5
