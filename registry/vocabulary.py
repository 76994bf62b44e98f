"""The registry's fixed word lists, each defined once. Validation, the catalogue's schemas,
the OpenAPI document and the pages' labels all take them from here (the labels are keyed
by them, and a test holds the two together)."""

from __future__ import annotations

from enum import StrEnum


class OrganisationKind(StrEnum):
    NHS_TRUST = "nhs_trust"
    ICB = "icb"
    GP_PRACTICE = "gp_practice"
    LOCAL_AUTHORITY = "local_authority"
    UNIVERSITY = "university"
    CHARITY = "charity"
    COMPANY = "company"
    REGISTRY = "registry"  # the registry's own accounts (seed, system)


# The kinds an organisation that asks about data can be: every kind but the registry's own.
USER_ORGANISATION_KINDS = tuple(k for k in OrganisationKind if k is not OrganisationKind.REGISTRY)


class SensitiveCategory(StrEnum):
    """Kinds of record the summit asked to be handled with extra care."""

    MENTAL_HEALTH = "mental_health"
    SELF_HARM = "self_harm"
    SEXUAL_HEALTH = "sexual_health"
    HIV = "hiv"
    FERTILITY = "fertility"
    ABORTION = "abortion"
    SUBSTANCE_MISUSE = "substance_misuse"


# The National Data Guardian's public benefit questions, asked of every planning and
# research change, by key.
PUBLIC_BENEFIT_QUESTIONS: dict[str, str] = {
    "benefits": "What are the benefits, and how likely are they?",
    "beneficiaries": "Who benefits, and is that fair?",
    "harms_and_mitigations": "What harms could follow (including from not using the "
    "data), and how are they reduced?",
    "commercial_involvement": "Is a company involved, and why does the public benefit "
    "outweigh its profit?",
    "benefits_to_nhs_and_public": "How do the benefits return to the NHS and the public?",
    "public_communication": "How is the public told about this use?",
}
