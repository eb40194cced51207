"""Protected blocks: events + rules -> desired blocks; reconcile -> block changes
(docs/architecture.md, *Protected blocks*).

Pure: imports only the standard library, :mod:`worker.core.model` and :mod:`worker.core.analysis`;
no I/O, no clock (``now`` is a parameter), no configuration dicts (``protect:`` rules
arrive as typed :class:`Rule` values).

The modules, each importing only those above it:

* :mod:`~worker.core.planning.rules`: :class:`Rule`, :class:`Plan`, :class:`Unprotectable`,
  the defaults, :func:`block_id`, and the words of reasons;
* :mod:`~worker.core.planning.slots`: instants, spans, the horizon days, a rule's window
  on a day, which events block time, meeting chains, :func:`horizon_end`;
* :mod:`~worker.core.planning.periods`: what each rule asks for, period by period;
* :mod:`~worker.core.planning.place`: :func:`plan` (keep, place, report);
* :mod:`~worker.core.planning.reconcile`: :func:`reconcile`.

How a plan is made
------------------
1. **Days.** The horizon is every local day (in the person's zone) from the date of
   ``now`` through the date of ``now + horizon`` (added in UTC), both included.
   :func:`horizon_end` is the instant that last day ends. All arithmetic is done on
   absolute instants (integer microseconds since the epoch), never on wall clocks.
2. **Periods.** Each rule asks for blocks per *period*: an ISO week ``2026-W45``
   (coaching ``per_week``, focus ``goal_per_week``), a date ``2026-11-03`` (lunch,
   focus ``goal_per_day``, coaching ``per_day`` alone), ``2026-11-03 12:15`` (recovery
   after a meeting chain that ends then) or ``after-2026-11-02`` (recovery after an
   overloaded day). The n-th block of a period has the id
   ``block_id(owner, rule, period, n)``.
3. **Keep** (no churn). In priority order, every existing owned block whose id a
   period asks for keeps its exact slot when that slot is still valid. Blocks that
   already started, and ids in ``taken_over``, count as fulfilled and are left alone.
4. **Place.** In the same order, what is still missing is placed in the free time that
   remains. An existing block whose slot is no longer valid keeps its id, so it is
   *moved*, not deleted and re-created. What cannot be placed is reported as an
   :class:`Unprotectable` with the reason.

A slot is valid when it starts at or after ``now``; lies inside one merged working
range of one horizon day (``WorkingHours.ranges_on``, touching ranges merged), on a
day that is not away (``DayMetrics.away``, the same rule as ``analysis.away_dates``);
lies inside the rule's ``days``/``window``/``earliest``/``latest``; overlaps no
blocking event; overlaps no other desired block, no owned block that already started
and no taken-over block of the same person.

Callers
-------
* Pass ``plan`` the events from 14 days before today (at least from the start of the
  current ISO week) through :func:`horizon_end`: blocks of this week that already
  started count only when they are seen, and an overloaded Friday asks for Monday.
* Call ``reconcile(plan.desired, events, taken_over, now=now, until=horizon_end(...))``.
  Without ``now`` a block that already started, and so is not desired, is deleted;
  without ``until`` owned blocks past the horizon are. Passing *all* events (not only
  the owned ones) lets a move name the meeting that took the slot.

Decisions the definitions leave open
-----------------------------------------------
* **Blocking events** are ``analysis.is_busy`` events *plus* timed out-of-office
  events and the user's own busy focus-time events (not cancelled, not declined, not
  steadyhand's): nobody expects coaching booked into a doctor's appointment marked
  out of office, or over focus time they set themselves. Steadyhand's own blocks never
  block each other except through the no-overlap rule above.
* **Priority** between rules: recovery, then lunch, then coaching, then focus (the most
  time-bound first); within a kind, the order of ``protect:`` (``Rule.index``).
  A block kept in step 3 is never displaced by a new one in step 4.
* **Weekly periods** are planned only once the horizon reaches the last day of the week
  the rule could use (e.g. Thursday for tue–thu); until then only their existing
  blocks are kept (nothing new, nothing reported). Planning a week from a fragment
  would crowd its blocks onto the first visible days and, with no churn, keep them
  there. The week of ``now`` uses its remaining days; blocks of it that already
  started count (pass events from the start of the ISO week, so they are seen).
* **Defaults:** ``title`` "" and ``duration`` 0 mean the kind's default
  (:data:`DEFAULT_TITLES`, :data:`DEFAULT_DURATIONS`: coaching 45 min, recovery
  15 min, focus 2 h, lunch 1 h). Coaching with neither ``per_week`` nor ``per_day``
  books one a week; with both, ``per_week`` a week and at most ``per_day`` on any day.
  Focus without a goal uses ``per_day``/``per_week`` × ``duration`` as the goal, else
  one ``duration`` a working day. A recovery rule with neither ``after_chain`` nor
  ``after_overloaded_day`` acts after chains longer than 2 h (docs/architecture.md).
  ``window`` None means working hours; ``earliest`` bounds a block's start, ``latest``
  its end.
* **Placement:** new blocks start on a 5-minute grid after ``now`` (``now`` rounded
  up), or where a meeting or window ends. Coaching: the day with the fewest of the
  rule's blocks, then the fewest meeting minutes (``analysis``), then the earliest
  date; the earliest slot on it. Focus: the longest free gap (a weekly goal first
  spreads over the days with the least focus booked), at its start; a block is
  ``min(gap, duration, max(missing, min_block))`` long, so the last block can
  overshoot the goal by less than ``min_block``. Lunch: the slot whose middle is
  closest to the middle of the allowed window. Recovery: right after the chain, else
  the earliest slot *starting* within 2 h after it; after an overloaded day, the
  earliest slot on the next day the rule can use (working, not away). A block whose
  slot broke only because its length changed keeps its start when it can.
* **Chains** are ``analysis.is_meeting`` events of one local day (with ``meetings_from``:
  ``busy`` makes every busy event a meeting, as in the analysis), merged, joined when
  the gap is at most ``policy.back_to_back_gap``; "longer than" is strict. Chains on
  horizon days and yesterday count (a late chain's 2 h can reach into today).
  An overloaded day asks for its quiet block on the next day the rule can use; that
  day must lie in the horizon, so the overloaded day itself is in the horizon, is
  yesterday, or lies before a weekend, holidays or away days that end today (up to
  14 days back).
* **Unprotectable** is reported for every period that cannot get all it asks for,
  with the count (``1 of 2 booked``) or the focus minutes missing, and why: no free
  time, away, no working hours in the window, or a window shorter than the block.
  Not reported: a period whose room lies entirely before ``now`` (nothing could be
  booked from ``now`` even on an empty calendar: that is history, not a plan, e.g.
  today's lunch at 15:00 or this week's tue–thu coaching on Friday) and a tail week
  not planned yet. Sorted by ``Rule.index``, then time.
* **Blocks** carry their times in the person's zone (``astimezone``; compare them as
  instants). ``Block.rule`` is the rule's kind. ``plan`` raises ``ValueError`` for a
  naive ``now`` and for two rules of one kind sharing an ``index`` (their ids would
  collide).
* **Taken over** ids produce no block and count as fulfilled; a taken-over focus block
  counts its event's length (the rule's ``duration`` when the event is not in
  ``events``). Its event still occupies its time.
* **Cancelled** owned events are ignored (as if absent), in :func:`plan` and
  :func:`reconcile`.
* **reconcile** compares instants (UTC), ``transparency``, and the title only when the
  existing event's title is known (titles may not be stored). With ``now``, an existing
  block that started before ``now`` is never moved or deleted, and no block is
  created that would start before ``now``. With ``until`` (pass :func:`horizon_end`),
  existing blocks starting at or after it lie outside the plan and are left alone.
  Two existing events with the same block id (a user's copy of a block): none of them is
  moved or deleted, and no other is created; the caller treats the block as taken over
  (deleting one could delete the original, and the copy is the user's). Untagged events in
  ``existing`` are never targeted; they only explain a move ("'Design review' now
  takes 14:00–14:45").
* ``Block`` has no field for ``Rule.defend``: ``Plan.rules`` maps each desired block id
  to the rule that asked for it.
"""

from worker.core.planning.place import plan
from worker.core.planning.reconcile import reconcile
from worker.core.planning.rules import (
    DEFAULT_DURATIONS,
    DEFAULT_MIN_BLOCK,
    DEFAULT_TITLES,
    KINDS,
    RECOVERY_REACH,
    Plan,
    Rule,
    Unprotectable,
    block_id,
)
from worker.core.planning.slots import horizon_end

__all__ = [
    "DEFAULT_DURATIONS",
    "DEFAULT_MIN_BLOCK",
    "DEFAULT_TITLES",
    "KINDS",
    "RECOVERY_REACH",
    "Plan",
    "Rule",
    "Unprotectable",
    "block_id",
    "horizon_end",
    "plan",
    "reconcile",
]
