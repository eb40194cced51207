"""Reading a provider's Retry-After: delay-seconds or an HTTP-date, at an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.retry import RETRY_AFTER_CEILING, retry_after_seconds

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "seconds"), [("120", 120.0), ("0", 0.0), (" 7 ", 7.0)])
def test_delay_seconds_are_the_wait(value: str, seconds: float) -> None:
    assert retry_after_seconds(value, NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "Tue, 01 Dec 2026 12:01:30 GMT",  # IMF-fixdate, the form servers must send
        "Tuesday, 01-Dec-26 12:01:30 GMT",  # obsolete RFC 850
        "Tue Dec  1 12:01:30 2026",  # obsolete asctime, no zone: GMT
    ],
)
def test_an_http_date_is_the_time_until_it(value: str) -> None:
    assert retry_after_seconds(value, NOW) == 90.0


def test_the_wait_is_counted_from_the_clock_given() -> None:
    value = "Tue, 01 Dec 2026 12:01:30 GMT"
    assert retry_after_seconds(value, NOW + timedelta(seconds=60)) == 30.0


def test_an_http_date_in_the_past_means_retry_now() -> None:
    assert retry_after_seconds("Sun, 06 Nov 1994 08:49:37 GMT", NOW) == 0.0
    assert retry_after_seconds("Tue, 01 Dec 2026 11:59:59 GMT", NOW) == 0.0


@pytest.mark.parametrize(
    "value",
    ["9" * 5000, "99999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"],
)
def test_a_huge_wait_is_the_ceiling_and_still_adds_to_a_time(value: str) -> None:
    seconds = retry_after_seconds(value, NOW)
    assert seconds == RETRY_AFTER_CEILING == 86400.0
    assert NOW + timedelta(seconds=seconds) == NOW + timedelta(days=1)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "-5",
        "1.5",
        "+5",
        "1e3",
        "0x10",
        "²",
        "soon",
        "Mon, 32 Nov 1994 08:49:37 GMT",
    ],
)
def test_a_negative_or_garbled_value_is_as_if_there_were_none(value: str | None) -> None:
    assert retry_after_seconds(value, NOW) is None
