"""Comparing versions: text as unified diffs, conditions by meaning, for every type."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from flask import Flask

from registry.services import catalogue, diff
from registry.services.catalogue import CATALOGUE, Direction
from tests import factories as f

T, L, M, U = Direction.TIGHTENS, Direction.LOOSENS, Direction.MIXED, Direction.UNCHANGED

# For every condition type with parameters: (old, new, expected direction).
PARAMETER_CHANGES: dict[str, list[tuple[dict[str, Any], dict[str, Any], Direction]]] = {
    "named_users_only": [
        ({"max_users": 20}, {"max_users": 10}, T),
        ({"max_users": 10}, {"max_users": 20}, L),
        ({}, {"max_users": 5}, T),
        ({"max_users": 5}, {}, L),
    ],
    "named_institutions_only": [
        ({"organisation_kinds": ["nhs_trust", "icb"]}, {"organisation_kinds": ["icb"]}, T),
        ({"organisation_kinds": ["icb"]}, {"organisation_kinds": ["icb", "university"]}, L),
        ({"organisation_kinds": ["icb"]}, {"organisation_kinds": ["university"]}, M),
    ],
    "time_limited": [
        ({"max_months": 36}, {"max_months": 12}, T),
        ({"max_months": 12}, {"max_months": 36}, L),
    ],
    "data_uses_register": [
        ({"within_days": 30}, {"within_days": 7}, T),
        ({}, {"within_days": 30}, T),
        ({"within_days": 7}, {}, L),
    ],
    "benefit_sharing_agreement": [
        ({"applies_to": "commercial_involvement"}, {"applies_to": "all"}, T),
        ({"applies_to": "all"}, {}, L),
    ],
    "processing_location": [
        ({"allowed_countries": ["GB", "IE"]}, {"allowed_countries": ["GB"]}, T),
        ({"allowed_countries": ["GB"]}, {"allowed_countries": ["GB", "FR"]}, L),
        ({"allowed_countries": ["GB"]}, {"allowed_countries": ["FR"]}, M),
    ],
    "return_of_results": [
        ({"within_months": 12}, {"within_months": 6}, T),
        ({"within_months": 6}, {"within_months": 24}, L),
    ],
}


def _valid_parameters(entry: catalogue.ConditionType) -> dict[str, Any]:
    examples = {"organisation_kinds": ["nhs_trust"], "allowed_countries": ["GB"], "max_months": 12}
    return {key: examples[key] for key in entry.parameters.get("required", [])}


def test_every_parameterised_type_has_its_direction_table() -> None:
    with_parameters = {e.code for e in CATALOGUE if e.parameters.get("properties")}
    assert with_parameters == set(PARAMETER_CHANGES)


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: e.code)
def test_adding_any_condition_tightens_and_removing_loosens(
    entry: catalogue.ConditionType,
) -> None:
    condition = {"code": entry.code, "parameters": _valid_parameters(entry)}
    added = diff.compare_conditions([], [condition])
    assert [(c["code"], c["direction"]) for c in added["added"]] == [(entry.code, T)]
    removed = diff.compare_conditions([condition], [])
    assert [(c["code"], c["direction"]) for c in removed["removed"]] == [(entry.code, L)]
    same = diff.compare_conditions([condition], [condition])
    assert same == {"added": [], "removed": [], "changed": []}


@pytest.mark.parametrize(
    ("code", "old", "new", "expected"),
    [(code, *case) for code, cases in PARAMETER_CHANGES.items() for case in cases],
)
def test_parameter_changes_tighten_or_loosen_by_type(
    code: str, old: dict[str, Any], new: dict[str, Any], expected: Direction
) -> None:
    entry = catalogue.get(code)
    assert entry is not None
    assert entry.validate(old) == {} and entry.validate(new) == {}
    changed = diff.compare_conditions(
        [{"code": code, "parameters": old}], [{"code": code, "parameters": new}]
    )["changed"]
    assert [(c["code"], c["direction"]) for c in changed] == [(code, expected)]


def test_overall_direction_combines_the_parts() -> None:
    assert catalogue.combine([T, T, U]) == T
    assert catalogue.combine([T, L]) == M
    assert catalogue.combine([U]) == U
    assert catalogue.combine([]) == U


def test_catalogue_entries_are_well_formed() -> None:
    assert len(CATALOGUE) >= 12
    codes = [e.code for e in CATALOGUE]
    assert len(codes) == len(set(codes))
    for entry in CATALOGUE:
        jsonschema.Draft202012Validator.check_schema(entry.parameters)
        assert entry.five_safes in catalogue.FIVE_SAFES
        assert entry.facts, entry.code
        if entry.duo:
            assert entry.duo[0].startswith("DUO:00000")
    duo = {e.duo[0] for e in CATALOGUE if e.duo}
    # non-commercial, time limit, user- and institution-specific, ethics, geography, return
    assert {
        "DUO:0000046",
        "DUO:0000025",
        "DUO:0000026",
        "DUO:0000028",
        "DUO:0000021",
        "DUO:0000022",
        "DUO:0000029",
    } <= duo


def test_the_diff_endpoint(app: Flask) -> None:
    f.catalogue()
    f.published("research-data", body="# Policy\n\nLine one.\nLine two.\n")
    f.published(
        "research-data",
        body="# Policy\n\nLine one.\nLine three.\n",
        conditions=[
            {"code": "time_limited", "parameters": {"max_months": 12}},
            {"code": "no_onward_sharing", "parameters": {}},
        ],
        sensitive_categories=["mental_health"],
    )
    client = app.test_client()
    body = client.get("/api/v1/policies/research-data/versions/2/diff").get_json()
    assert (body["from"]["number"], body["to"]["number"]) == (1, 2)
    assert "-Line two.\n+Line three.\n" in body["text"]["body"]
    assert body["text"]["summary"] == ""
    conditions = body["conditions"]
    assert [(c["code"], c["direction"]) for c in conditions["added"]] == [
        ("no_onward_sharing", "tightens")
    ]
    assert [(c["code"], c["direction"]) for c in conditions["removed"]] == [
        ("ethics_approval", "loosens")
    ]
    assert [(c["code"], c["from"], c["to"], c["direction"]) for c in conditions["changed"]] == [
        ("time_limited", {"max_months": 24}, {"max_months": 12}, "tightens")
    ]
    assert body["sensitive_categories"]["added"] == ["mental_health"]
    assert body["direction"] == "mixed"
    back = client.get("/api/v1/policies/research-data/versions/1/diff?against=2").get_json()
    assert [c["code"] for c in back["conditions"]["added"]] == ["ethics_approval"]
    assert client.get("/api/v1/policies/research-data/versions/1/diff").status_code == 404
    assert client.get("/api/v1/policies/research-data/versions/2/diff?against=7").status_code == 404
