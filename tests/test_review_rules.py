"""Quorum and threshold arithmetic, at and around the boundaries."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.models.review import Choice
from registry.services.reviews import Ballot, decide

E, W, R, A = Choice.ENDORSE, Choice.ENDORSE_WITH_CHANGES, Choice.REJECT, Choice.ABSTAIN


def ballots(*choices: str, uncounted: tuple[str, ...] = ()) -> list[Ballot]:
    return [Ballot(c, True) for c in choices] + [Ballot(c, False) for c in uncounted]


@pytest.mark.parametrize(
    ("quorum", "threshold", "eligible", "votes", "uncounted", "outcome"),
    [
        # Quorum 1/2 of 10 eligible: 5 counted votes reach it, 4 do not.
        ("0.5", "0.5", 10, (E, E, E, R, R), (), "endorsed"),
        ("0.5", "0.5", 10, (E, E, E, R), (), "no_quorum"),
        # Abstentions count towards quorum, not towards the threshold.
        ("0.5", "0.5", 10, (E, A, A, A, A), (), "endorsed"),
        ("0.5", "0.5", 10, (R, A, A, A, A), (), "rejected"),
        # Everyone abstains: quorum met, nothing endorsed.
        ("0.5", "0.5", 4, (A, A, A, A), (), "rejected"),
        # Threshold 2/3 of decisive votes: exactly 2 of 3 meets it ("at least").
        ("0.6667", "0.6666", 3, (E, W, R), (), "endorsed"),
        ("0.5", "0.6667", 3, (E, W, R), (), "rejected"),
        # Endorse-with-changes counts as an endorsement.
        ("0.5", "0.5", 2, (W, R), (), "endorsed"),
        # Threshold exactly at one half: a tie endorses.
        ("0.5", "0.5", 4, (E, E, R, R), (), "endorsed"),
        ("0.5", "0.5001", 4, (E, E, R, R), (), "rejected"),
        # Conflicted or ineligible votes never count, for quorum or threshold.
        ("0.5", "0.5", 4, (R,), (E, E, E), "no_quorum"),
        ("0.5", "0.5", 4, (R, R), (E, E, E), "rejected"),
        # No one eligible: no quorum, whatever was cast.
        ("0", "0", 0, (), (E, E), "no_quorum"),
        # Quorum 0 with no votes: met, but nothing to endorse.
        ("0", "0.5", 5, (), (), "rejected"),
        ("1", "1", 3, (E, E, E), (), "endorsed"),
        ("1", "1", 3, (E, E), (), "no_quorum"),
        ("1", "1", 3, (E, E, W), (), "endorsed"),
        ("1", "1", 3, (E, E, R), (), "rejected"),
    ],
)
def test_outcomes_at_the_boundaries(
    quorum: str,
    threshold: str,
    eligible: int,
    votes: tuple[str, ...],
    uncounted: tuple[str, ...],
    outcome: str,
) -> None:
    result, tally = decide(
        Decimal(quorum), Decimal(threshold), eligible, ballots(*votes, uncounted=uncounted)
    )
    assert result == outcome
    assert tally["counted"] == len(votes)
    assert tally["not_counted"] == len(uncounted)
    assert tally["cast"] == len(votes) + len(uncounted)


fractions = st.integers(0, 10_000).map(lambda n: Decimal(n) / 10_000)


@given(
    quorum=fractions,
    threshold=fractions,
    eligible=st.integers(0, 30),
    counted=st.lists(st.sampled_from([E, W, R, A]), max_size=30),
    uncounted=st.lists(st.sampled_from([E, W, R, A]), max_size=5),
)
def test_decide_matches_a_model_in_exact_fractions(
    quorum: Decimal, threshold: Decimal, eligible: int, counted: list[str], uncounted: list[str]
) -> None:
    counted = counted[:eligible]
    result, tally = decide(quorum, threshold, eligible, ballots(*counted, uncounted=uncounted))
    if eligible == 0 or Fraction(len(counted)) < Fraction(quorum) * eligible:
        expected = "no_quorum"
    else:
        decisive = [c for c in counted if c != A]
        endorsements = sum(c in (E, W) for c in decisive)
        expected = (
            "endorsed"
            if endorsements and Fraction(endorsements) >= Fraction(threshold) * len(decisive)
            else "rejected"
        )
    assert result == expected
    assert tally["endorse"] + tally["endorse_with_changes"] + tally["reject"] + tally[
        "abstain"
    ] == len(counted)


@given(
    quorum=st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-1, max_value=2),
    threshold=st.decimals(
        allow_nan=False, allow_infinity=False, places=4, min_value=-1, max_value=2
    ),
    eligible=st.integers(0, 30),
    counted=st.lists(st.sampled_from([R, A]), max_size=30),
    uncounted=st.lists(st.sampled_from([E, W, R, A]), max_size=5),
)
def test_no_endorsement_without_a_counted_endorsing_vote(
    quorum: Decimal, threshold: Decimal, eligible: int, counted: list[str], uncounted: list[str]
) -> None:
    """Whatever a panel's settings (0 included, from panels made before they were
    checked), a review none of whose counted votes endorses is never endorsed."""
    result, _tally = decide(quorum, threshold, eligible, ballots(*counted, uncounted=uncounted))
    assert result != "endorsed"
