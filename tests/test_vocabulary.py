"""Every fixed word list is defined once; whatever labels or repeats one is keyed by it."""

from __future__ import annotations

from typing import Any

import pytest

from registry.models.policy import DataCategory, Purpose, VersionStatus
from registry.models.review import Choice, Outcome
from registry.pages import words
from registry.schemas.identity import KINDS
from registry.schemas.policy import PublicBenefitSchema, VersionUpdateSchema
from registry.services import catalogue, evaluation
from registry.services.catalogue import Direction, Kind
from registry.services.policies import EDITABLE_FIELDS
from registry.vocabulary import (
    PUBLIC_BENEFIT_QUESTIONS,
    USER_ORGANISATION_KINDS,
    OrganisationKind,
    SensitiveCategory,
)


@pytest.mark.parametrize(
    ("labels", "words_of"),
    [
        (words.ORGANISATION_KINDS, USER_ORGANISATION_KINDS),
        (words.SENSITIVE, SensitiveCategory),
        (words.PURPOSES, Purpose),
        (words.DATA_CATEGORIES, DataCategory),
        (words.STATUSES, VersionStatus),
        (words.OUTCOMES, Outcome),
        (words.CHOICES, Choice),
        (words.KINDS, Kind),
        (words.DIRECTIONS, Direction),
        (words.DECISIONS, evaluation.OUTCOMES),
    ],
    ids=lambda v: type(v).__name__,
)
def test_every_label_list_is_keyed_by_its_vocabulary(labels: Any, words_of: Any) -> None:
    assert set(labels) == {str(w) for w in words_of}


def test_the_lists_that_repeat_a_vocabulary_are_made_from_it() -> None:
    assert list(catalogue.ORGANISATION_KINDS) == [str(k) for k in USER_ORGANISATION_KINDS]
    assert OrganisationKind.REGISTRY not in USER_ORGANISATION_KINDS
    assert list(catalogue.ORGANISATION_KINDS) == KINDS
    assert list(catalogue.SENSITIVE_CATEGORIES) == [str(c) for c in SensitiveCategory]
    named = catalogue.get("named_institutions_only")
    assert named is not None
    schema = named.parameters["properties"]["organisation_kinds"]
    assert schema["items"]["enum"] == list(catalogue.ORGANISATION_KINDS)


def test_the_schemas_ask_what_the_services_know() -> None:
    assert set(PublicBenefitSchema().fields) == set(PUBLIC_BENEFIT_QUESTIONS)
    assert set(VersionUpdateSchema().fields) == EDITABLE_FIELDS
