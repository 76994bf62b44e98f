"""A policy version as an ODRL 2.2 policy in JSON-LD, for tools that read ODRL.

One ``Set`` per version. Its permission is to ``use`` the version's data category for its
purpose: every ``requires`` condition becomes a constraint on it and every ``duty`` condition
a duty of it. Every ``prohibits`` condition becomes a prohibition beside it. The mapping from
condition types to ODRL lives in one table, ``MAPPINGS``, keyed by condition code.

Names follow the ODRL 2.2 Information Model and Vocabulary (W3C Recommendations, 2018):
ODRL's own left operands (``purpose``, ``elapsedTime``, ``spatial``), operators and actions
where one fits, and terms of our own under ``registry:`` (declared by the ``profile``) where
none does. DUO links come from the catalogue, so they cannot drift from it.

Pure: no Flask, no database. Works on the content document (``content.content_document``)
that the content hash covers, plus what the caller knows of the version's place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from registry.services import catalogue
from registry.services.catalogue import Kind

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
VOCAB = "urn:london-data-policy-registry:vocab:"
DATA = "urn:london-data-policy-registry:data:"
# The Information Model requires a profile for any term beyond the ODRL Core Vocabulary, and
# that includes the Common Vocabulary terms used here (elapsedTime, spatial, isAnyOf ...).
PROFILE = "urn:london-data-policy-registry:odrl-profile"
OBO = "http://purl.obolibrary.org/obo/"
# ``spatial`` takes an IRI naming the area and the source of its code; this is the ISO 3166
# form the ODRL Information Model uses in its own examples.
ISO_3166 = "https://www.iso.org/obp/ui/#iso:code:3166:"

# DUO (GA4GH Data Use Ontology) terms for the purposes. Planning services has none.
PURPOSE_DUO: dict[str, str | None] = {
    "individual_care": "DUO:0000043",  # clinical care use
    "planning": None,
    "research": "DUO:0000042",  # general research use
}

Params = Mapping[str, Any]
Node = dict[str, Any]
Constraints = Callable[[Params], list[Node]]


class UnmappedCondition(ValueError):
    """A condition code with no ODRL mapping (or a purpose with no term)."""


def context() -> list[Any]:
    """The JSON-LD context: ODRL's, then the prefixes for our own and borrowed terms."""
    return [
        ODRL_CONTEXT,
        {
            "dct": "http://purl.org/dc/terms/",
            "obo": OBO,
            "registry": VOCAB,
            "xsd": "http://www.w3.org/2001/XMLSchema#",
            "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
            "cc": "http://creativecommons.org/ns#",
        },
    ]


def asset(data_category: str) -> str:
    return f"{DATA}{data_category}"


def duo_link(code: str) -> Node:
    """``DUO:0000025`` as a link to its OBO IRI, ``obo:DUO_0000025``."""
    return {"@id": "obo:" + code.replace(":", "_")}


# --- building blocks ---------------------------------------------------------------------


def _constraint(left: str, operator: str, right: Any) -> Node:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


def _no_constraints(_params: Params) -> list[Node]:
    return []


def _flag(name: str) -> Constraints:
    """A yes/no requirement: our own left operand, which must equal true."""

    def constraints(_params: Params) -> list[Node]:
        return [_constraint(f"registry:{name}", "eq", True)]

    return constraints


def _duration(amount: int, unit: str) -> Node:
    return {"@value": f"P{amount}{unit}", "@type": "xsd:duration"}


def _elapsed(amount: int, unit: str) -> Node:
    # The vocabulary defines elapsedTime as the period within which the action may be
    # exercised, and says only ``eq`` SHOULD be used with it: ``eq P36M`` already means
    # "for at most 36 months", so ``lteq`` would say the same thing less conventionally.
    return _constraint("elapsedTime", "eq", _duration(amount, unit))


def _within(name: str, unit: str) -> Constraints:
    """A deadline on a duty, when the parameter sets one.

    ODRL has no "within N days of" left operand; elapsedTime is the nearest. Its period
    starts when an action is first exercised, which we read as the permitted use starting.
    """

    def constraints(params: Params) -> list[Node]:
        amount = params.get(name)
        return [] if amount is None else [_elapsed(amount, unit)]

    return constraints


# --- the mappings that need more than a flag ------------------------------------------------


def _named_users(params: Params) -> list[Node]:
    # Two facts: access is only by people named in the application, and (when the policy
    # sets a limit) there are at most so many of them.
    named = [_constraint("registry:namedUsersOnly", "eq", True)]
    limit = params.get("max_users")
    if limit is not None:
        named.append(_constraint("registry:namedUserCount", "lteq", limit))
    return named


def _institutions(params: Params) -> list[Node]:
    kinds = [
        {"@id": f"registry:organisationKind:{kind}"}
        for kind in sorted(params["organisation_kinds"])
    ]
    return [_constraint("registry:organisationKind", "isAnyOf", kinds)]


def _time_limit(params: Params) -> list[Node]:
    return [_elapsed(params["max_months"], "M")]


def _location(params: Params) -> list[Node]:
    countries = [{"@id": f"{ISO_3166}{code}"} for code in sorted(params["allowed_countries"])]
    return [_constraint("spatial", "isAnyOf", countries)]


def _benefit_sharing(params: Params) -> list[Node]:
    agreement = _constraint("registry:benefitSharingAgreement", "eq", True)
    if params.get("applies_to", "commercial_involvement") == "all":
        return [agreement]
    # Only where a company is involved: an ODRL logical constraint, "no company, or an
    # agreement". Evaluators must support ``or`` (Information Model, 2.5.2).
    no_company = _constraint("registry:commercialInvolvement", "eq", False)
    return [{"or": [no_company, agreement]}]


def _profit_outweighs_benefit(_params: Params) -> list[Node]:
    return [_constraint("registry:publicBenefitOutweighsProfit", "eq", False)]


# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """A ``requires`` condition: constraints on the permission."""

    constraints: Constraints
    kind: ClassVar[Kind] = Kind.REQUIRES


@dataclass(frozen=True)
class Duty:
    """A ``duty`` condition: an action the permission's holder must take."""

    action: str
    constraints: Constraints = _no_constraints
    kind: ClassVar[Kind] = Kind.DUTY


@dataclass(frozen=True)
class Prohibition:
    """A ``prohibits`` condition: an action on the data that is not allowed."""

    action: str
    constraints: Constraints = _no_constraints
    kind: ClassVar[Kind] = Kind.PROHIBITS


ConditionMapping = Requirement | Duty | Prohibition

# ``commercialize`` is deprecated in ODRL 2.2 (owl:deprecated, and owl:equivalentProperty
# cc:CommercialUse): the Creative Commons term replaces it, and the ODRL context defines
# the ``cc`` prefix. ``distribute`` is "to supply the Asset to third-parties".
#
# No generic fallback: a condition with no entry here raises UnmappedCondition. A fallback
# could only say "some condition applies" and would publish a policy that reads as granting
# more than it does; the test that every catalogue type has an entry keeps this unreachable
# for anything the registry can attach.
MAPPINGS: dict[str, ConditionMapping] = {
    "trusted_research_environment": Requirement(_flag("trustedResearchEnvironment")),
    "national_data_opt_out": Requirement(_flag("nationalDataOptOutApplied")),
    "no_reidentification": Prohibition("registry:reidentify"),
    "named_users_only": Requirement(_named_users),
    "named_institutions_only": Requirement(_institutions),
    "time_limited": Requirement(_time_limit),
    "ethics_approval": Requirement(_flag("ethicsApproval")),
    "data_uses_register": Duty("registry:publishInDataUsesRegister", _within("within_days", "D")),
    "benefit_sharing_agreement": Requirement(_benefit_sharing),
    "public_benefit_over_profit": Prohibition("cc:CommercialUse", _profit_outweighs_benefit),
    "non_commercial_only": Prohibition("cc:CommercialUse"),
    "processing_location": Requirement(_location),
    "return_of_results": Duty("registry:returnResults", _within("within_months", "M")),
    "no_onward_sharing": Prohibition("distribute"),
    "direct_care_relationship": Requirement(_flag("directCareRelationship")),
    "access_audited": Duty("registry:logAccess"),
    "security_assured": Requirement(_flag("securityAssured")),
    "data_minimised": Requirement(_flag("dataMinimised")),
}


def mapping_for(code: str) -> ConditionMapping:
    found = MAPPINGS.get(code)
    if found is None:
        raise UnmappedCondition(f"Condition type {code!r} has no ODRL mapping.")
    return found


def _provenance(code: str) -> Node:
    """What every rule from a condition carries: its code, and its DUO term if it has one."""
    note: Node = {"registry:condition": code}
    entry = catalogue.get(code)
    if entry is not None and entry.duo is not None:
        note["rdfs:seeAlso"] = duo_link(entry.duo[0])
    return note


def _purpose(purpose: str) -> Node:
    if purpose not in PURPOSE_DUO:
        raise UnmappedCondition(f"Purpose {purpose!r} has no ODRL term.")
    term: Node = {"@id": f"registry:purpose:{purpose}"}
    duo = PURPOSE_DUO[purpose]
    if duo is not None:
        term["rdfs:seeAlso"] = duo_link(duo)
    return term


# --- the document ------------------------------------------------------------------------------


def policy_document(
    content: Mapping[str, Any], *, uid: str, content_hash: str, in_force_from: str | None
) -> dict[str, Any]:
    """The version ``content`` as an ODRL ``Set``; ``uid`` is the version's absolute URL."""
    document: dict[str, Any] = {
        "@context": context(),
        "@type": "Set",
        "uid": uid,
        "profile": PROFILE,
        # A permission to use and a prohibition of, say, distribute (which ODRL includes in
        # use) conflict; the default strategy would void the whole policy. Ours is that the
        # prohibitions win.
        "conflict": "prohibit",
        "dct:title": content["title"],
        "dct:description": content["summary"],
        "registry:policy": content["policy"],
        "registry:version": content["version"],
        "registry:contentHash": content_hash,
        "registry:purpose": _purpose(content["purpose"]),
        "registry:retirement": bool(content["retirement"]),
    }
    if in_force_from is not None:
        document["registry:inForceFrom"] = {"@value": in_force_from, "@type": "xsd:dateTime"}
    if content["retirement"]:
        # ODRL has no notion of a withdrawn policy, and a Policy must have at least one
        # Rule. The honest rendering of "this policy no longer grants anything" is a Set
        # with no rules, flagged: a validator rejects it and an evaluator finds nothing
        # permitted, both right. A prohibition of use would be wrong: it would forbid what
        # other policies for the same purpose and data still permit.
        document["permission"] = []
        document["prohibition"] = []
        return document

    target = asset(content["data_category"])
    purpose = _constraint("purpose", "eq", _purpose(content["purpose"]))
    constraints: list[Node] = [purpose]
    duties: list[Node] = []
    prohibitions: list[Node] = []
    for condition in sorted(content["conditions"], key=lambda c: str(c["code"])):
        code = condition["code"]
        params: Params = condition.get("parameters") or {}
        rule = mapping_for(code)
        note = _provenance(code)
        extra = rule.constraints(params)
        if isinstance(rule, Requirement):
            constraints.extend({**each, **note} for each in extra)
        elif isinstance(rule, Duty):
            duties.append(_rule(None, rule.action, extra, note))
        else:
            prohibitions.append(_rule(target, rule.action, extra, note))

    permission: Node = {"target": target, "action": "use", "constraint": constraints}
    if duties:
        permission["duty"] = duties
    sensitive = sorted(content.get("sensitive_categories") or [])
    if sensitive:
        # Not an ODRL rule: which sensitive categories the permission covers (uses that
        # touch any other sensitive category are referred to a panel).
        document["registry:sensitiveCategories"] = [
            {"@id": f"registry:sensitiveCategory:{category}"} for category in sensitive
        ]
    document["permission"] = [permission]
    document["prohibition"] = prohibitions
    return document


def _rule(target: str | None, action: str, constraints: list[Node], note: Node) -> Node:
    rule: Node = {} if target is None else {"target": target}
    rule["action"] = action
    if constraints:
        rule["constraint"] = constraints
    rule.update(note)
    return rule
