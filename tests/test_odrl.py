"""Policy versions as ODRL 2.2 policies: the mapping of every condition type, and JSON-LD.

The JSON-LD checks expand the documents with PyLD, serving the ODRL 2.2 context from the
vendored copy in ``tests/support/odrl/`` (see its README for source and licence): no network.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyld import jsonld

from registry.models.policy import Purpose
from registry.services import catalogue, odrl
from registry.services.catalogue import CATALOGUE, Kind
from registry.services.seed import STARTER_SET

ODRL = "http://www.w3.org/ns/odrl/2/"
R = "urn:london-data-policy-registry:vocab:"
CC = "http://creativecommons.org/ns#"
XSD = "http://www.w3.org/2001/XMLSchema#"
SEE_ALSO = "http://www.w3.org/2000/01/rdf-schema#seeAlso"
CONDITION = R + "condition"
ISO = "https://www.iso.org/obp/ui/#iso:code:3166:"
OBO = "http://purl.obolibrary.org/obo/"
UID = "https://registry.example/policies/research-depersonalised/versions/3"
HASH = "0123456789abcdef" * 4

CONTEXT_FILE = Path(__file__).parent / "support" / "odrl" / "odrl.jsonld"
VENDORED_CONTEXT = json.loads(CONTEXT_FILE.read_text(encoding="utf-8"))


def _load(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A document loader that knows one document, the ODRL context, and never fetches."""
    if url != odrl.ODRL_CONTEXT:
        raise ValueError(f"The tests load no document but the ODRL context, not {url}.")
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": copy.deepcopy(VENDORED_CONTEXT),
    }


def expand(document: dict[str, Any]) -> dict[str, Any]:
    expanded = jsonld.expand(document, {"documentLoader": _load})
    assert len(expanded) == 1
    node: dict[str, Any] = expanded[0]
    return node


def content(
    conditions: list[dict[str, Any]],
    *,
    purpose: str = "research",
    data_category: str = "depersonalised",
    retirement: bool = False,
    sensitive: list[str] | None = None,
) -> dict[str, Any]:
    """A content document shaped like ``content.content_document``."""
    return {
        "policy": "research-depersonalised",
        "title": "Research and development with de-personalised data",
        "purpose": purpose,
        "data_category": data_category,
        "version": 3,
        "retirement": retirement,
        "body": "# Research\n",
        "summary": "Approved researchers may analyse de-personalised data.",
        "rationale": "The summit set conditions.",
        "conditions": sorted(conditions, key=lambda c: c["code"]),
        "sensitive_categories": sorted(sensitive or []),
        "effective_from": None,
    }


def starter_content(policy: dict[str, Any]) -> dict[str, Any]:
    return {
        **content(
            policy["conditions"],
            purpose=policy["purpose"],
            data_category=policy["data_category"],
            sensitive=policy["sensitive_categories"],
        ),
        "policy": policy["slug"],
        "title": policy["title"],
        "summary": policy["summary"],
    }


def document(doc_content: dict[str, Any], in_force_from: str | None = None) -> dict[str, Any]:
    return odrl.policy_document(
        doc_content, uid=UID, content_hash=HASH, in_force_from=in_force_from
    )


def ids(values: list[dict[str, Any]]) -> list[str]:
    return [value["@id"] for value in values]


def one_id(node: dict[str, Any], key: str) -> str:
    [value] = node[key]
    iri: str = value["@id"]
    return iri


def right_operand(constraint: dict[str, Any]) -> Any:
    """The right operand, expanded: an IRI, a sorted list of IRIs, or a literal."""
    values = constraint[ODRL + "rightOperand"]
    if one_id(constraint, ODRL + "operator") == ODRL + "isAnyOf":
        return sorted(ids(values))
    [value] = values
    if "@id" in value:
        return value["@id"]
    return (value["@value"], value["@type"]) if "@type" in value else value["@value"]


def triple(constraint: dict[str, Any]) -> tuple[str, str, Any]:
    return (
        one_id(constraint, ODRL + "leftOperand"),
        one_id(constraint, ODRL + "operator"),
        right_operand(constraint),
    )


# --- every condition type, alone ----------------------------------------------------------

# For every condition type: parameters to attach it with, and what it must become, in
# expanded IRIs: ("constraints", [(left, operator, right), ...]) on the permission,
# ("duty" / "prohibition", action, [(left, operator, right), ...]).
EXPECTED: dict[str, tuple[dict[str, Any], tuple[Any, ...]]] = {
    "trusted_research_environment": (
        {},
        ("constraints", [(R + "trustedResearchEnvironment", ODRL + "eq", True)]),
    ),
    "national_data_opt_out": (
        {},
        ("constraints", [(R + "nationalDataOptOutApplied", ODRL + "eq", True)]),
    ),
    "named_users_only": (
        {"max_users": 20},
        (
            "constraints",
            [
                (R + "namedUsersOnly", ODRL + "eq", True),
                (R + "namedUserCount", ODRL + "lteq", 20),
            ],
        ),
    ),
    "named_institutions_only": (
        {"organisation_kinds": ["nhs_trust", "icb"]},
        (
            "constraints",
            [
                (
                    R + "organisationKind",
                    ODRL + "isAnyOf",
                    [R + "organisationKind:icb", R + "organisationKind:nhs_trust"],
                )
            ],
        ),
    ),
    "time_limited": (
        {"max_months": 36},
        ("constraints", [(ODRL + "elapsedTime", ODRL + "eq", ("P36M", XSD + "duration"))]),
    ),
    "ethics_approval": ({}, ("constraints", [(R + "ethicsApproval", ODRL + "eq", True)])),
    "benefit_sharing_agreement": (
        {"applies_to": "all"},
        ("constraints", [(R + "benefitSharingAgreement", ODRL + "eq", True)]),
    ),
    "processing_location": (
        {"allowed_countries": ["IE", "GB"]},
        ("constraints", [(ODRL + "spatial", ODRL + "isAnyOf", [ISO + "GB", ISO + "IE"])]),
    ),
    "direct_care_relationship": (
        {},
        ("constraints", [(R + "directCareRelationship", ODRL + "eq", True)]),
    ),
    "security_assured": ({}, ("constraints", [(R + "securityAssured", ODRL + "eq", True)])),
    "data_minimised": ({}, ("constraints", [(R + "dataMinimised", ODRL + "eq", True)])),
    "no_reidentification": ({}, ("prohibition", R + "reidentify", [])),
    "no_onward_sharing": ({}, ("prohibition", ODRL + "distribute", [])),
    "non_commercial_only": ({}, ("prohibition", CC + "CommercialUse", [])),
    "public_benefit_over_profit": (
        {},
        (
            "prohibition",
            CC + "CommercialUse",
            [(R + "publicBenefitOutweighsProfit", ODRL + "eq", False)],
        ),
    ),
    "data_uses_register": (
        {"within_days": 30},
        (
            "duty",
            R + "publishInDataUsesRegister",
            [(ODRL + "elapsedTime", ODRL + "eq", ("P30D", XSD + "duration"))],
        ),
    ),
    "return_of_results": (
        {"within_months": 12},
        (
            "duty",
            R + "returnResults",
            [(ODRL + "elapsedTime", ODRL + "eq", ("P12M", XSD + "duration"))],
        ),
    ),
    "access_audited": ({}, ("duty", R + "logAccess", [])),
}

PURPOSE_CONSTRAINT = (ODRL + "purpose", ODRL + "eq", R + "purpose:research")


def test_every_condition_type_has_an_odrl_mapping() -> None:
    """Adding a condition type to the catalogue without an ODRL mapping fails here."""
    assert set(odrl.MAPPINGS) == set(catalogue.BY_CODE)
    assert set(EXPECTED) == set(catalogue.BY_CODE)


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: e.code)
def test_a_mapping_is_of_its_condition_types_kind(entry: catalogue.ConditionType) -> None:
    assert odrl.mapping_for(entry.code).kind is entry.kind
    assert (
        EXPECTED[entry.code][1][0]
        == {
            Kind.REQUIRES: "constraints",
            Kind.DUTY: "duty",
            Kind.PROHIBITS: "prohibition",
        }[entry.kind]
    )


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: e.code)
def test_each_condition_type_maps_to_the_right_kind_of_rule(
    entry: catalogue.ConditionType,
) -> None:
    params, expected = EXPECTED[entry.code]
    assert entry.validate(params) == {}
    compact = document(content([{"code": entry.code, "parameters": params}]))
    node = expand(compact)

    [permission] = node[ODRL + "permission"]
    assert one_id(permission, ODRL + "action") == ODRL + "use"
    assert (
        one_id(permission, ODRL + "target") == "urn:london-data-policy-registry:data:depersonalised"
    )
    purpose, *constraints = permission[ODRL + "constraint"]
    assert triple(purpose) == PURPOSE_CONSTRAINT
    duties = permission.get(ODRL + "duty", [])
    prohibitions = node.get(ODRL + "prohibition", [])

    if entry.kind is Kind.REQUIRES:
        assert not duties and not prohibitions
        assert [triple(c) for c in constraints] == expected[1]
        rules = constraints
    elif entry.kind is Kind.DUTY:
        assert not constraints and not prohibitions
        [duty] = duties
        assert one_id(duty, ODRL + "action") == expected[1]
        assert ODRL + "target" not in duty
        assert [triple(c) for c in duty.get(ODRL + "constraint", [])] == expected[2]
        rules = duties
    else:
        assert not constraints and not duties
        [prohibition] = prohibitions
        assert one_id(prohibition, ODRL + "action") == expected[1]
        assert one_id(prohibition, ODRL + "target") == one_id(permission, ODRL + "target")
        assert [triple(c) for c in prohibition.get(ODRL + "constraint", [])] == expected[2]
        rules = prohibitions

    for rule in rules:
        assert rule[CONDITION] == [{"@value": entry.code}]
        links = ids(rule.get(SEE_ALSO, []))
        assert links == ([OBO + entry.duo[0].replace(":", "_")] if entry.duo else [])


def test_benefit_sharing_where_a_company_is_involved_is_an_odrl_or() -> None:
    for params in ({}, {"applies_to": "commercial_involvement"}):
        compact = document(content([{"code": "benefit_sharing_agreement", "parameters": params}]))
        [permission] = expand(compact)[ODRL + "permission"]
        _, logical = permission[ODRL + "constraint"]
        assert logical[CONDITION] == [{"@value": "benefit_sharing_agreement"}]
        assert ODRL + "leftOperand" not in logical
        assert [triple(c) for c in logical[ODRL + "or"]] == [
            (R + "commercialInvolvement", ODRL + "eq", False),
            (R + "benefitSharingAgreement", ODRL + "eq", True),
        ]


def test_optional_parameters_left_out_leave_their_constraints_out() -> None:
    compact = document(
        content(
            [
                {"code": "named_users_only", "parameters": {}},
                {"code": "data_uses_register", "parameters": {}},
                {"code": "return_of_results", "parameters": {}},
            ]
        )
    )
    [permission] = expand(compact)[ODRL + "permission"]
    _, named = permission[ODRL + "constraint"]
    assert triple(named) == (R + "namedUsersOnly", ODRL + "eq", True)
    assert [ODRL + "constraint" in duty for duty in permission[ODRL + "duty"]] == [False, False]


def test_a_condition_with_no_mapping_is_refused() -> None:
    with pytest.raises(odrl.UnmappedCondition, match="no_such_condition"):
        document(content([{"code": "no_such_condition", "parameters": {}}]))


# --- whole documents -----------------------------------------------------------------------


def _keys(node: Any, ignore: frozenset[str]) -> int:
    if isinstance(node, list):
        return sum(_keys(item, ignore) for item in node)
    if isinstance(node, dict):
        return sum(
            (key not in ignore) + _keys(value, ignore)
            for key, value in node.items()
            if key != "@context"
        )
    return 0


def _iris(node: Any) -> Iterator[str]:
    """Every IRI in an expanded document: properties, node ids, types and datatypes."""
    if isinstance(node, list):
        for item in node:
            yield from _iris(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("@id", "@type"):
                yield from [value] if isinstance(value, str) else value
            elif key != "@value":
                yield key
                yield from _iris(value)


@pytest.mark.parametrize("policy", STARTER_SET, ids=lambda p: p["slug"])
def test_the_starter_policies_are_valid_odrl_json_ld(policy: dict[str, Any]) -> None:
    compact = document(starter_content(policy), in_force_from="2025-03-01T09:00:00.000000Z")
    node = expand(compact)

    # Nothing the processor could not map was dropped, and every IRI is absolute.
    assert _keys(compact, frozenset({"@id", "uid", "@value"})) == _keys(
        node, frozenset({"@id", "@value"})
    )
    for iri in _iris(node):
        assert iri.startswith(("http://", "https://", "urn:")), iri

    assert node["@id"] == UID
    assert node["@type"] == [ODRL + "Set"]
    assert ids(node[ODRL + "profile"]) == [odrl.PROFILE]
    assert ids(node[ODRL + "conflict"]) == [ODRL + "prohibit"]
    assert node["http://purl.org/dc/terms/title"] == [{"@value": policy["title"]}]
    assert node["http://purl.org/dc/terms/description"] == [{"@value": policy["summary"]}]
    assert node[R + "contentHash"] == [{"@value": HASH}]
    assert node[R + "inForceFrom"] == [
        {"@value": "2025-03-01T09:00:00.000000Z", "@type": XSD + "dateTime"}
    ]
    assert node[R + "retirement"] == [{"@value": False}]
    assert ids(node[R + "purpose"]) == [R + "purpose:" + policy["purpose"]]
    assert sorted(ids(node.get(R + "sensitiveCategories", []))) == [
        R + "sensitiveCategory:" + c for c in sorted(policy["sensitive_categories"])
    ]

    asset = "urn:london-data-policy-registry:data:" + policy["data_category"]
    [permission] = node[ODRL + "permission"]
    assert one_id(permission, ODRL + "action") == ODRL + "use"
    assert one_id(permission, ODRL + "target") == asset
    purpose, *constraints = permission[ODRL + "constraint"]
    assert triple(purpose)[:2] == (ODRL + "purpose", ODRL + "eq")
    assert triple(purpose)[2] == R + "purpose:" + policy["purpose"]

    by_kind: dict[Kind, list[str]] = {kind: [] for kind in Kind}
    for condition in policy["conditions"]:
        by_kind[catalogue.BY_CODE[condition["code"]].kind].append(condition["code"])
    found_constraints = {c[CONDITION][0]["@value"] for c in constraints}
    assert found_constraints == set(by_kind[Kind.REQUIRES])
    for constraint in constraints:
        code = constraint[CONDITION][0]["@value"]
        if ODRL + "or" in constraint:
            assert code == "benefit_sharing_agreement"
            continue
        operands = {(left, operator) for left, operator, _ in EXPECTED[code][1][1]}
        assert triple(constraint)[:2] in operands

    duties = permission.get(ODRL + "duty", [])
    assert sorted(d[CONDITION][0]["@value"] for d in duties) == sorted(by_kind[Kind.DUTY])
    for duty in duties:
        code = duty[CONDITION][0]["@value"]
        assert one_id(duty, ODRL + "action") == EXPECTED[code][1][1]

    prohibitions = node[ODRL + "prohibition"]
    assert sorted(p[CONDITION][0]["@value"] for p in prohibitions) == sorted(
        by_kind[Kind.PROHIBITS]
    )
    for prohibition in prohibitions:
        code = prohibition[CONDITION][0]["@value"]
        assert one_id(prohibition, ODRL + "action") == EXPECTED[code][1][1]
        assert one_id(prohibition, ODRL + "target") == asset


def test_the_research_starter_policy_reads_as_expected() -> None:
    """The fullest starter policy, spelt out: the permission, its duties, the prohibitions."""
    [research] = [p for p in STARTER_SET if p["slug"] == "research-depersonalised"]
    node = expand(document(starter_content(research)))
    [permission] = node[ODRL + "permission"]
    assert [triple(c) for c in permission[ODRL + "constraint"] if ODRL + "or" not in c] == [
        (ODRL + "purpose", ODRL + "eq", R + "purpose:research"),
        (R + "ethicsApproval", ODRL + "eq", True),
        (R + "namedUsersOnly", ODRL + "eq", True),
        (R + "namedUserCount", ODRL + "lteq", 20),
        (R + "nationalDataOptOutApplied", ODRL + "eq", True),
        (ODRL + "spatial", ODRL + "isAnyOf", [ISO + "GB"]),
        (ODRL + "elapsedTime", ODRL + "eq", ("P36M", XSD + "duration")),
        (R + "trustedResearchEnvironment", ODRL + "eq", True),
    ]
    assert [
        (one_id(d, ODRL + "action"), [triple(c) for c in d[ODRL + "constraint"]])
        for d in permission[ODRL + "duty"]
    ] == [
        (
            R + "publishInDataUsesRegister",
            [(ODRL + "elapsedTime", ODRL + "eq", ("P30D", XSD + "duration"))],
        ),
        (R + "returnResults", [(ODRL + "elapsedTime", ODRL + "eq", ("P12M", XSD + "duration"))]),
    ]
    assert [one_id(p, ODRL + "action") for p in node[ODRL + "prohibition"]] == [
        ODRL + "distribute",
        R + "reidentify",
        CC + "CommercialUse",
    ]


def test_the_document_is_deterministic() -> None:
    conditions = [
        {"code": entry.code, "parameters": EXPECTED[entry.code][0]} for entry in CATALOGUE
    ]
    first = document(content(conditions, sensitive=["hiv", "abortion"]), "2025-01-01T00:00:00Z")
    shuffled = list(conditions)
    random.Random(7).shuffle(shuffled)
    again = document(
        {**content(conditions, sensitive=["abortion", "hiv"]), "conditions": shuffled},
        "2025-01-01T00:00:00Z",
    )
    assert first == again
    assert json.dumps(first) == json.dumps(again)
    assert json.dumps(first) == json.dumps(
        document(content(conditions, sensitive=["hiv", "abortion"]), "2025-01-01T00:00:00Z")
    )


def test_the_document_does_not_change_its_input() -> None:
    conditions = [{"code": c, "parameters": p} for c, (p, _) in EXPECTED.items()]
    given = content(conditions)
    kept = copy.deepcopy(given)
    document(given)
    assert given == kept


def _duo_links(node: Any, found: dict[str, set[str]]) -> dict[str, set[str]]:
    """Every rdfs:seeAlso in the expanded document, by the condition code beside it."""
    if isinstance(node, list):
        for item in node:
            _duo_links(item, found)
    elif isinstance(node, dict):
        if SEE_ALSO in node:
            owner = node[CONDITION][0]["@value"] if CONDITION in node else node.get("@id", "?")
            found.setdefault(owner, set()).update(ids(node[SEE_ALSO]))
        for value in node.values():
            _duo_links(value, found)
    return found


@pytest.mark.parametrize("purpose", list(Purpose))
def test_duo_links_appear_exactly_for_the_catalogues_duo_terms(purpose: Purpose) -> None:
    conditions = [{"code": c, "parameters": p} for c, (p, _) in EXPECTED.items()]
    node = expand(document(content(conditions, purpose=purpose.value)))
    found = _duo_links(node, {})

    expected = {
        entry.code: {OBO + entry.duo[0].replace(":", "_")} for entry in CATALOGUE if entry.duo
    }
    purpose_duo = {"research": "DUO_0000042", "individual_care": "DUO_0000043"}.get(purpose)
    if purpose_duo:
        expected[R + "purpose:" + purpose.value] = {OBO + purpose_duo}
    assert found == expected


def test_every_purpose_has_a_term() -> None:
    assert set(odrl.PURPOSE_DUO) == {p.value for p in Purpose}
    with pytest.raises(odrl.UnmappedCondition):
        document(content([], purpose="marketing"))


def test_a_retirement_grants_nothing_and_says_so() -> None:
    retirement = content([], retirement=True)
    compact = document(retirement, in_force_from="2026-01-01T00:00:00.000000Z")
    assert compact["@type"] == "Set"
    assert compact["registry:retirement"] is True
    assert compact["permission"] == []
    assert compact["prohibition"] == []

    node = expand(compact)
    assert node["@id"] == UID
    assert node[R + "retirement"] == [{"@value": True}]
    # Empty lists stay empty lists when expanded, and say nothing in RDF.
    assert node.get(ODRL + "permission", []) == []
    assert node.get(ODRL + "prohibition", []) == []
    assert node[R + "inForceFrom"][0]["@value"] == "2026-01-01T00:00:00.000000Z"


def test_in_force_from_is_left_out_until_the_version_is_in_force() -> None:
    compact = document(content([]))
    assert "registry:inForceFrom" not in compact
    [permission] = expand(compact)[ODRL + "permission"]
    assert [triple(c) for c in permission[ODRL + "constraint"]] == [PURPOSE_CONSTRAINT]


def test_the_vendored_context_is_the_odrl_22_context() -> None:
    """A few of the published context's terms, to catch a truncated or wrong file."""
    terms = VENDORED_CONTEXT["@context"]
    assert terms["odrl"] == ODRL
    assert terms["uid"] == "@id"
    assert terms["action"] == {"@type": "@vocab", "@id": "odrl:action"}
    assert terms["neq"] == "odrl:neq"
    assert {"elapsedTime", "spatial", "purpose", "isAnyOf", "distribute", "prohibit"} <= set(terms)
    assert "commercialize" not in terms


def test_the_endpoint_serves_a_version_as_json_ld(app: Any) -> None:
    from tests import factories as f

    f.catalogue()
    f.published("research-data")
    client = app.test_client()
    response = client.get("/api/v1/policies/research-data/versions/1/odrl")
    assert response.status_code == 200
    assert response.mimetype == "application/ld+json"
    body = response.get_json(force=True)
    assert body["uid"].endswith("/api/v1/policies/research-data/versions/1")
    version = client.get("/api/v1/policies/research-data/versions/1").get_json()
    assert body["registry:contentHash"] == version["content_hash"]
    expanded = expand(body)
    assert expanded["@type"] == ["http://www.w3.org/ns/odrl/2/Set"]
    editor, _ = f.as_role(app, "editor")
    editor.post("/api/v1/policies/research-data/versions", json={})
    assert client.get("/api/v1/policies/research-data/versions/2/odrl").status_code == 404
    assert editor.get("/api/v1/policies/research-data/versions/2/odrl").status_code == 200
