"""The decision rules, alone: every condition type in every state, every outcome, precedence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from registry.services import catalogue, evaluation
from registry.services.catalogue import CATALOGUE, Kind
from registry.services.evaluation import CitedPolicy, Clause, PolicySet, Proposal

# code: (parameters, facts that meet it, facts that do not, facts that leave it unknown)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "trusted_research_environment": (
        {},
        {"trusted_research_environment": True},
        {"trusted_research_environment": False},
        {},
    ),
    "national_data_opt_out": (
        {},
        {"national_data_opt_out_applied": True},
        {"national_data_opt_out_applied": False},
        {},
    ),
    "no_reidentification": (
        {},
        {"reidentification_intended": False},
        {"reidentification_intended": True},
        {},
    ),
    "named_users_only": (
        {"max_users": 2},
        {"named_users": ["a", "b"]},
        {"named_users": ["a", "b", "c"]},
        {},
    ),
    "named_institutions_only": (
        {"organisation_kinds": ["nhs_trust", "icb"]},
        {"organisation_kind": "icb"},
        {"organisation_kind": "company"},
        {},
    ),
    "time_limited": ({"max_months": 24}, {"duration_months": 24}, {"duration_months": 25}, {}),
    "ethics_approval": ({}, {"ethics_approval": True}, {"ethics_approval": False}, {}),
    "data_uses_register": (
        {"within_days": 30},
        {"will_publish_in_register": True},
        {"will_publish_in_register": False},
        {},
    ),
    "benefit_sharing_agreement": (
        {"applies_to": "all"},
        {"benefit_sharing_agreement": True},
        {"benefit_sharing_agreement": False},
        {},
    ),
    "public_benefit_over_profit": (
        {},
        {"commercial_involvement": True, "public_benefit_outweighs_profit": True},
        {"commercial_involvement": True, "public_benefit_outweighs_profit": False},
        {"commercial_involvement": True},
    ),
    "non_commercial_only": (
        {},
        {"commercial_involvement": False},
        {"commercial_involvement": True},
        {},
    ),
    "processing_location": (
        {"allowed_countries": ["GB"]},
        {"processing_location": "GB"},
        {"processing_location": "US"},
        {},
    ),
    "return_of_results": ({}, {"will_return_results": True}, {"will_return_results": False}, {}),
    "no_onward_sharing": ({}, {"onward_sharing": False}, {"onward_sharing": True}, {}),
    "direct_care_relationship": (
        {},
        {"direct_care_relationship": True},
        {"direct_care_relationship": False},
        {},
    ),
    "access_audited": ({}, {"access_logged": True}, {"access_logged": False}, {}),
    "security_assured": ({}, {"security_assured": True}, {"security_assured": False}, {}),
    "data_minimised": ({}, {"data_minimised": True}, {"data_minimised": False}, {}),
}


def policy(
    *clauses: tuple[str, dict[str, Any]],
    slug: str = "p",
    purpose: str = "research",
    category: str = "depersonalised",
    sensitive: frozenset[str] = frozenset(),
) -> CitedPolicy:
    return CitedPolicy(
        slug,
        slug.title(),
        1,
        "h" * 64,
        purpose,
        category,
        sensitive,
        tuple(Clause(code, params) for code, params in clauses),
    )


def decide(
    *policies: CitedPolicy,
    facts: dict[str, Any] | None = None,
    sensitive: frozenset[str] = frozenset(),
    purpose: str = "research",
    category: str = "depersonalised",
) -> dict[str, Any]:
    return evaluation.evaluate(
        PolicySet(3, "2026-01-01T00:00:00.000000Z", policies),
        Proposal(purpose, category, sensitive, facts or {}),
    )


def test_every_condition_type_has_a_table_row() -> None:
    assert set(CASES) == {entry.code for entry in CATALOGUE}


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: e.code)
@pytest.mark.parametrize("state", ["met", "unmet", "unknown"])
def test_each_condition_type_in_each_state(entry: catalogue.ConditionType, state: str) -> None:
    params, met, unmet, unknown = CASES[entry.code]
    assert entry.validate(params) == {}
    facts = {"met": met, "unmet": unmet, "unknown": unknown}[state]
    status, reason = entry.evaluate(params, facts)
    assert status == state
    assert reason.endswith(".") and len(reason) > 15
    result = decide(policy((entry.code, params)), facts=facts)
    assert [c["status"] for c in result["conditions"]] == [state]
    if state == "unmet":
        expected = "refused"
    elif state == "unknown":
        expected = "permitted_with_duties" if entry.kind is Kind.DUTY else "refused"
    else:
        expected = "permitted_with_duties" if entry.kind is Kind.DUTY else "permitted"
    assert result["outcome"] == expected
    if expected == "refused" and state == "unknown":
        assert result["missing_facts"], "a refusal for want of facts lists them"
        assert {f["name"] for f in result["missing_facts"]} <= {f.name for f in entry.facts}


def test_no_applicable_policy() -> None:
    result = decide(
        policy(("ethics_approval", {}), purpose="planning"), facts={"ethics_approval": True}
    )
    assert result["outcome"] == "no_applicable_policy"
    assert result["policies"] == [] and result["conditions"] == []


def test_unmet_beats_unknown_beats_referral_beats_duties() -> None:
    strict = policy(
        ("ethics_approval", {}),
        ("time_limited", {"max_months": 12}),
        ("return_of_results", {}),
        slug="general",
    )
    sensitive = frozenset({"hiv"})
    # unmet and unknown together: refused, and the unknown facts are still listed
    result = decide(strict, facts={"ethics_approval": False}, sensitive=sensitive)
    assert result["outcome"] == "refused"
    assert [f["name"] for f in result["missing_facts"]] == ["duration_months"]
    # unknown only: refused, listing the missing fact
    result = decide(strict, facts={"ethics_approval": True}, sensitive=sensitive)
    assert result["outcome"] == "refused"
    assert result["referred_categories"] == []
    # all known and met, but a sensitive category no policy covers: referred
    facts = {"ethics_approval": True, "duration_months": 6}
    result = decide(strict, facts=facts, sensitive=sensitive)
    assert (result["outcome"], result["referred_categories"]) == ("referred_to_panel", ["hiv"])
    # covered: permitted with the duty listed
    covering = policy(("data_minimised", {}), slug="hiv-research", sensitive=sensitive)
    result = decide(strict, covering, facts={**facts, "data_minimised": True}, sensitive=sensitive)
    assert result["outcome"] == "permitted_with_duties"
    assert [d["code"] for d in result["duties"]] == ["return_of_results"]
    assert [p["slug"] for p in result["policies"]] == ["general", "hiv-research"]


def test_sensitive_policies_apply_only_to_uses_touching_them() -> None:
    general = policy(("ethics_approval", {}), slug="general")
    extra = policy(
        ("non_commercial_only", {}), slug="extra", sensitive=frozenset({"mental_health"})
    )
    plain = decide(general, extra, facts={"ethics_approval": True})
    assert [p["slug"] for p in plain["policies"]] == ["general"]
    assert plain["outcome"] == "permitted"
    touching = decide(
        general, extra, facts={"ethics_approval": True}, sensitive=frozenset({"mental_health"})
    )
    assert [p["slug"] for p in touching["policies"]] == ["extra", "general"]
    assert touching["outcome"] == "refused"
    assert touching["missing_facts"] == [
        {"name": "commercial_involvement", "question": "Is a company involved?"}
    ]


def test_a_declined_duty_is_a_refusal() -> None:
    result = decide(policy(("data_uses_register", {})), facts={"will_publish_in_register": False})
    assert result["outcome"] == "refused"
    assert result["duties"] == []


def test_the_answer_cites_revision_versions_and_hashes() -> None:
    result = decide(policy(("ethics_approval", {})), facts={"ethics_approval": True})
    assert result["revision"] == 3
    assert result["policies"] == [
        {"slug": "p", "title": "P", "version": 1, "content_hash": "h" * 64}
    ]
    assert result["explanation"].startswith("Permitted")


# --- properties -------------------------------------------------------------------------------

blocking = [e for e in CATALOGUE if e.kind in (Kind.REQUIRES, Kind.PROHIBITS)]
fact_values = {
    name: st.none() | st.from_type(bool) if fact.schema.get("type") == "boolean" else st.none()
    for name, fact in catalogue.all_facts().items()
}
fact_values.update(
    {
        "duration_months": st.none() | st.integers(0, 60),
        "named_users": st.none() | st.lists(st.sampled_from(["a", "b", "c"]), max_size=4),
        "organisation_kind": st.none() | st.sampled_from(catalogue.ORGANISATION_KINDS),
        "processing_location": st.none() | st.sampled_from(["GB", "IE", "US"]),
    }
)
facts_strategy = st.fixed_dictionaries(dict(fact_values.items()))
clause_strategy = st.sampled_from(sorted(CASES)).map(lambda code: (code, CASES[code][0]))
sensitive_strategy = st.frozensets(st.sampled_from(catalogue.SENSITIVE_CATEGORIES), max_size=2)


@given(
    clauses=st.lists(clause_strategy, max_size=6, unique_by=lambda c: c[0]),
    extra=st.sampled_from(blocking),
    facts=facts_strategy,
    sensitive=sensitive_strategy,
    covered=sensitive_strategy,
)
def test_adding_a_requirement_or_prohibition_never_permits_what_was_refused(
    clauses: list[tuple[str, dict[str, Any]]],
    extra: catalogue.ConditionType,
    facts: dict[str, Any],
    sensitive: frozenset[str],
    covered: frozenset[str],
) -> None:
    facts = {k: v for k, v in facts.items() if v is not None}
    before = policy(*clauses)
    cover = policy(slug="cover", sensitive=covered) if covered else None
    with_extra = policy(
        *[c for c in clauses if c[0] != extra.code], (extra.code, CASES[extra.code][0])
    )
    sets = [p for p in (cover,) if p]
    was = decide(before, *sets, facts=facts, sensitive=sensitive)
    now = decide(with_extra, *sets, facts=facts, sensitive=sensitive)
    if was["outcome"] == "refused":
        assert now["outcome"] == "refused"
    if was["outcome"] == "referred_to_panel":
        assert now["outcome"] in ("refused", "referred_to_panel")
    # and evaluation is deterministic
    assert decide(with_extra, *sets, facts=facts, sensitive=sensitive) == now


def test_the_catalogue_file_is_read_whole_and_refuses_an_entry_it_cannot_evaluate(
    tmp_path: Path,
) -> None:
    """A flag is data; a condition that needs more names an evaluator in code; the word
    lists its schemas use come from the vocabulary, not from the file."""
    entry = {
        "code": "a_flag",
        "title": "A flag",
        "description": "One yes/no fact.",
        "kind": "requires",
        "five_safes": "data",
        "facts": [
            {
                "name": "x",
                "question": "X?",
                "schema": {"enum": {"vocabulary": "organisation_kinds"}},
            }
        ],
        "flag": {
            "fact": "x",
            "want": True,
            "met": "Met.",
            "unmet": "Unmet.",
            "unknown": "Unknown.",
        },
    }
    path = tmp_path / "conditions.yaml"
    path.write_text(yaml.safe_dump([entry]))
    [loaded] = catalogue.load(path)
    assert loaded.facts[0].schema == {"enum": list(catalogue.ORGANISATION_KINDS)}
    assert loaded.evaluate({}, {"x": True})[0] == "met"
    assert loaded.evaluate({}, {"x": False}) == ("unmet", "Unmet.")
    unknown = {k: v for k, v in entry.items() if k != "flag"} | {"evaluate": "guesswork"}
    for broken in (
        unknown,
        {**entry, "evaluate": "named_users"},
        {k: v for k, v in entry.items() if k != "flag"},
    ):
        path.write_text(yaml.safe_dump([broken]))
        with pytest.raises(ValueError, match="a_flag"):
            catalogue.load(path)
