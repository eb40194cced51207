"""Numbers typed by people or sent by servers: "²" is a digit to str.isdigit() but not to
int(), and int() refuses 4,300 digits or more. Every place that reads one says "not a
number" (or "too large") in its own way and never raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.config.web import parse_listen
from worker.programs import checkin
from worker.web import partners as partner_pages
from worker.web import pulse as pulse_pages

#: Text that looks like numbers: ASCII and other decimal digits, superscripts, long runs.
NUMBERISH = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="0123456789²³¹٣٤۵०१߀𝟘,  ", max_size=20),
    st.integers(min_value=0, max_value=5000).map(lambda n: "9" * n),
)


@given(NUMBERISH)
def test_commitment_line_numbers_are_numbers_on_the_list_or_left_out(typed: str) -> None:
    found = checkin.commitment_numbers(typed, 5)
    assert all(1 <= n <= 5 for n in found) and found == sorted(set(found))


@given(NUMBERISH)
def test_a_commitment_links_line_is_a_small_number_or_none(typed: str) -> None:
    found = partner_pages._line(typed)
    assert found is None or 0 < found < 1000


@given(NUMBERISH)
def test_a_pulse_score_is_on_the_scale_or_none(typed: str) -> None:
    question = pulse_pages.Question("workload", "W", 0, 10)
    found = pulse_pages._score(typed, question)
    assert found is None or 0 <= found <= 10


@pytest.mark.parametrize("port", ["²", "٣٤", "9" * 5000, "65536", "0"])
def test_a_listen_port_that_is_no_port_is_said_in_words(port: str) -> None:
    with pytest.raises(ValueError, match="has no port from 1 to 65535"):
        parse_listen(f"127.0.0.1:{port}")
