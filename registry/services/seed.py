"""The starter policy set, loaded through the same services as any change.

Derived from the OneLondon Citizens' Summit (2020) and the National Data Guardian's
"Putting Good into Practice" dialogue (2021). Each starter policy is drafted, submitted to
the starter-set panel, endorsed and published, so its history reads like any other.
Running the seed again changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from registry.db import utcnow
from registry.models.identity import Role
from registry.models.review import Choice
from registry.services import identity, memberships, panels, policies, reviews
from registry.services.context import Actor

ORGANISATION = "London data policy registry"
EDITOR = "starter-set-editor@registry.invalid"
PANEL_ACCOUNT = "starter-set-panel@registry.invalid"
PANEL = "Starter set panel"
PANEL_DESCRIPTION = (
    "Endorsed the starter set, which transcribes the recommendations of the OneLondon "
    "Citizens' Summit (February and March 2020: 100 Londoners from all 32 boroughs). Its "
    "one member is a registry account standing for that record, not a citizen. Every later "
    "change goes to a panel of Londoners."
)
RECOMMENDATION = (
    "Publish. This policy restates conditions the OneLondon Citizens' Summit set out; the "
    "panel of Londoners should review it within its first year."
)

_DUTIES_OF_TRANSPARENCY = {"code": "data_uses_register", "parameters": {"within_days": 30}}

STARTER_SET: list[dict[str, Any]] = [
    {
        "slug": "individual-care",
        "title": "Using a person's record to care for them",
        "purpose": "individual_care",
        "data_category": "personal",
        "summary": "Health and care staff who are caring for you may see the parts of your "
        "joined-up record their role needs. Every look is logged, and you can ask who looked.",
        "body": (
            "# Using a person's record to care for them\n\n"
            "Londoners expect the people caring for them to have the information they need, "
            "without having to repeat their story to every service.\n\n"
            "## Who may see the record\n"
            "Only health and care professionals with a role in the person's care, and only "
            "the parts that role needs. Access follows the role, not the organisation.\n\n"
            "## When it is urgent\n"
            "In an emergency, the professionals treating the person may see what they need "
            "to treat them safely. Urgent access is logged like any other and reviewed.\n\n"
            "## Accountability\n"
            "Every access is recorded. People can ask who has looked at their record, and "
            "organisations must investigate access that was not needed for care.\n"
        ),
        "rationale": "The summit asked that personal data be used for individual care "
        "with role-based access, provision for urgency, and clear accountability.",
        "conditions": [
            {"code": "direct_care_relationship", "parameters": {}},
            {"code": "data_minimised", "parameters": {}},
            {"code": "security_assured", "parameters": {}},
            {"code": "access_audited", "parameters": {}},
        ],
        "sensitive_categories": [],
    },
    {
        "slug": "individual-care-sensitive-records",
        "title": "Sensitive parts of a person's record, for their care",
        "purpose": "individual_care",
        "data_category": "personal",
        "summary": "Records about mental health, self-harm, sexual health, HIV, fertility, "
        "abortion or substance misuse are shown only to those caring for the person whose "
        "role needs them, with every look logged.",
        "body": (
            "# Sensitive parts of a person's record\n\n"
            "Some information carries more risk of harm or stigma if it is seen by the wrong "
            "person. It is still needed for safe care, so it is shared for care, but more "
            "narrowly.\n\n"
            "- Only professionals with a role in the person's care whose role needs the "
            "sensitive information may see it.\n"
            "- Only the sensitive items relevant to the care being given are shown.\n"
            "- Every access is logged and open to audit.\n"
        ),
        "rationale": "Participants asked for identifiable and sensitive data to be treated "
        "with the utmost care.",
        "conditions": [
            {"code": "direct_care_relationship", "parameters": {}},
            {"code": "data_minimised", "parameters": {}},
            {"code": "access_audited", "parameters": {}},
        ],
        "sensitive_categories": [
            "mental_health",
            "self_harm",
            "sexual_health",
            "hiv",
            "fertility",
            "abortion",
            "substance_misuse",
        ],
    },
    {
        "slug": "planning-depersonalised",
        "title": "Planning and improving services with de-personalised data",
        "purpose": "planning",
        "data_category": "depersonalised",
        "summary": "NHS and council organisations may use de-personalised data to plan and "
        "improve services, if it is kept secure, people who opted out are left out, no one "
        "tries to identify anyone, and every use is published.",
        "body": (
            "# Planning and improving services with de-personalised data\n\n"
            "De-personalised data has names, addresses and other details that directly "
            "identify people removed or replaced, but could still identify someone if "
            "combined with other information. Londoners expect it to be used to plan and "
            "improve services, on conditions.\n\n"
            "## Security\n"
            "Only organisations of the health and care system that meet the national data "
            "security standards, storing and processing the data in the United Kingdom, and "
            "only the data items the purpose needs.\n\n"
            "## Transparency\n"
            "Every use is published in the data uses register within 30 days.\n\n"
            "## Choice\n"
            "The national data opt-out is applied: people who have said no are left out. "
            "No one may try to re-identify anyone, and the data is not passed on.\n"
        ),
        "rationale": "The summit expected de-personalised data to be used for planning, "
        "with conditions for security, transparency and the individual's choice.",
        "conditions": [
            {
                "code": "named_institutions_only",
                "parameters": {
                    "organisation_kinds": ["nhs_trust", "icb", "gp_practice", "local_authority"]
                },
            },
            {"code": "security_assured", "parameters": {}},
            {"code": "processing_location", "parameters": {"allowed_countries": ["GB"]}},
            {"code": "data_minimised", "parameters": {}},
            {"code": "national_data_opt_out", "parameters": {}},
            {"code": "no_reidentification", "parameters": {}},
            {"code": "no_onward_sharing", "parameters": {}},
            _DUTIES_OF_TRANSPARENCY,
        ],
        "sensitive_categories": [],
        "public_benefit": {
            "benefits": "Better planned services: capacity, waiting lists, prevention, "
            "and finding where care falls short, which is likely for most uses.",
            "beneficiaries": "Londoners who use health and care services, including groups "
            "whose needs are otherwise unseen.",
            "harms_and_mitigations": "Re-identification and loss of trust; mitigated by "
            "security standards, the opt-out, a ban on re-identification and onward "
            "sharing, and publication. Not using the data would leave services planned "
            "blind.",
            "commercial_involvement": "None: only NHS and council organisations may use "
            "the data under this policy.",
            "benefits_to_nhs_and_public": "Directly: the users are the services.",
            "public_communication": "Every use is published in the data uses register.",
        },
    },
    {
        "slug": "planning-anonymous-statistics",
        "title": "Anonymous statistics for planning",
        "purpose": "planning",
        "data_category": "anonymous",
        "summary": "Anonymous, aggregated statistics may be used to plan services, "
        "including about sensitive conditions, as long as no one tries to identify anyone "
        "and each use is published.",
        "body": (
            "# Anonymous statistics for planning\n\n"
            "Anonymous data cannot reasonably identify anyone: counts and rates, with small "
            "numbers suppressed. It may be used to plan services, including services for "
            "sensitive conditions, because people cannot be singled out.\n\n"
            "- No attempt may be made to identify anyone, for example by combining tables.\n"
            "- Only the statistics the purpose needs are produced.\n"
            "- Each use is published in the data uses register.\n"
        ),
        "rationale": "Planning needs statistics about sensitive conditions too; anonymous "
        "aggregates carry the least risk.",
        "conditions": [
            {"code": "no_reidentification", "parameters": {}},
            {"code": "data_minimised", "parameters": {}},
            _DUTIES_OF_TRANSPARENCY,
        ],
        "sensitive_categories": [
            "mental_health",
            "self_harm",
            "sexual_health",
            "hiv",
            "fertility",
            "abortion",
            "substance_misuse",
        ],
        "public_benefit": {
            "benefits": "Services for sensitive conditions planned on evidence.",
            "beneficiaries": "People with those conditions, who are often under-served.",
            "harms_and_mitigations": "Small numbers could single people out; they are "
            "suppressed and re-identification is prohibited.",
            "commercial_involvement": "Not expected; any use with a company still needs "
            "public benefit and is published.",
            "benefits_to_nhs_and_public": "Better planned services.",
            "public_communication": "Every use is published in the data uses register.",
        },
    },
    {
        "slug": "research-depersonalised",
        "title": "Research and development with de-personalised data",
        "purpose": "research",
        "data_category": "depersonalised",
        "summary": "Approved researchers may analyse de-personalised data inside a trusted "
        "research environment in the UK, for a limited time, if the public benefit "
        "outweighs any profit and benefits are shared with the NHS.",
        "body": (
            "# Research and development with de-personalised data\n\n"
            "Londoners want research to be ambitious, and they set conditions on who may "
            "have access, how the data is safeguarded and how benefits are shared.\n\n"
            "## Who may have access\n"
            "Named researchers (at most 20 per project), on a project with research ethics "
            "approval, for at most 36 months.\n\n"
            "## Safeguards\n"
            "The data stays inside a trusted research environment in the United Kingdom and "
            "is never passed on. The national data opt-out is applied. No one may try to "
            "identify anyone.\n\n"
            "## Benefits\n"
            "Public benefit must outweigh profit: no use for purely commercial gain. Where a "
            "company is involved, an agreement shares the benefits fairly with the NHS. "
            "Results and derived data return to the NHS, and every use is published.\n"
        ),
        "rationale": "The summit set conditions for research access, safeguards and benefit "
        "sharing; the NDG dialogue asked that public benefit outweigh profit.",
        "conditions": [
            {"code": "trusted_research_environment", "parameters": {}},
            {"code": "processing_location", "parameters": {"allowed_countries": ["GB"]}},
            {"code": "named_users_only", "parameters": {"max_users": 20}},
            {"code": "ethics_approval", "parameters": {}},
            {"code": "time_limited", "parameters": {"max_months": 36}},
            {"code": "national_data_opt_out", "parameters": {}},
            {"code": "no_reidentification", "parameters": {}},
            {"code": "no_onward_sharing", "parameters": {}},
            {"code": "public_benefit_over_profit", "parameters": {}},
            {
                "code": "benefit_sharing_agreement",
                "parameters": {"applies_to": "commercial_involvement"},
            },
            {"code": "return_of_results", "parameters": {"within_months": 12}},
            _DUTIES_OF_TRANSPARENCY,
        ],
        "sensitive_categories": [],
        "public_benefit": {
            "benefits": "New treatments, better diagnosis and safer care; uncertain for any "
            "single project, likely across many.",
            "beneficiaries": "Patients in London and beyond; benefit-sharing returns value "
            "to the NHS that provided the data.",
            "harms_and_mitigations": "Re-identification, commercial capture, loss of trust; "
            "mitigated by the trusted environment, named users, ethics approval, time "
            "limits and publication. Not doing research forgoes its benefits.",
            "commercial_involvement": "Allowed only where public benefit outweighs profit "
            "and benefits are shared with the NHS by agreement.",
            "benefits_to_nhs_and_public": "Results and derived data return to the NHS; "
            "benefit-sharing agreements where a company is involved.",
            "public_communication": "Every use is published in the data uses register.",
        },
    },
    {
        "slug": "research-sensitive-categories",
        "title": "Extra safeguards for research on sensitive conditions",
        "purpose": "research",
        "data_category": "depersonalised",
        "summary": "Research touching mental health, self-harm or substance misuse has "
        "tighter limits: at most 10 named researchers, 24 months, and no company "
        "involvement. Other sensitive conditions go to a citizen panel.",
        "body": (
            "# Extra safeguards for research on sensitive conditions\n\n"
            "This policy adds to the general research policy when a project touches mental "
            "health, self-harm or substance misuse.\n\n"
            "- At most 10 named researchers.\n"
            "- At most 24 months.\n"
            "- No company may be involved.\n\n"
            "Research touching sexual health, HIV, fertility or abortion is not covered by "
            "any starter policy: each such request is referred to a citizen panel.\n"
        ),
        "rationale": "Participants asked for sensitive data to be treated with the utmost "
        "care; tighter limits apply where research touches it.",
        "conditions": [
            {"code": "named_users_only", "parameters": {"max_users": 10}},
            {"code": "time_limited", "parameters": {"max_months": 24}},
            {"code": "non_commercial_only", "parameters": {}},
        ],
        "sensitive_categories": ["mental_health", "self_harm", "substance_misuse"],
        "public_benefit": {
            "benefits": "Research into conditions where better evidence is badly needed.",
            "beneficiaries": "People living with these conditions.",
            "harms_and_mitigations": "Stigma if anyone were identified; mitigated by fewer "
            "users, shorter access and no commercial involvement, on top of the general "
            "research safeguards.",
            "commercial_involvement": "Not allowed under this policy.",
            "benefits_to_nhs_and_public": "Results return to the NHS under the general "
            "research policy.",
            "public_communication": "Every use is published in the data uses register.",
        },
    },
]


def _account(session: Session, actor: Actor, org_id: int, email: str, role: str, name: str) -> int:
    user = identity.find_user(session, email)
    if user is None:
        user = identity.create_user(
            session,
            actor,
            email=email,
            display_name=name,
            organisation_id=org_id,
            role=role,
            password=None,
        )
    return user.id


def load(session: Session, actor: Actor) -> list[str]:
    """Load whatever of the starter set is missing; return the slugs published now."""
    policies.sync_catalogue(session, actor)
    org = identity.find_organisation(session, ORGANISATION) or identity.create_organisation(
        session, actor, ORGANISATION, "registry"
    )
    editor_id = _account(
        session,
        actor,
        org.id,
        EDITOR,
        Role.EDITOR,
        "Starter set (transcribed from the summit report)",
    )
    member_id = _account(
        session,
        actor,
        org.id,
        PANEL_ACCOUNT,
        Role.PANEL_MEMBER,
        "Starter set panel (record of the summit)",
    )
    panel = next(
        (p for p in panels.list_panels(session, limit=1000, after=None).items if p.name == PANEL),
        None,
    ) or panels.create_panel(
        session,
        actor,
        {
            "name": PANEL,
            "description": PANEL_DESCRIPTION,
            "quorum": 1,
            "threshold": 1,
            "default_review_days": 1,
        },
    )
    if not panels.members(session, panel.id):
        memberships.add_member(session, actor, panel.id, member_id, None, None)
    editor = Actor(
        kind="system",
        user_id=editor_id,
        role=Role.EDITOR,
        label="seed",
        request_id=actor.request_id,
    )
    member = Actor(
        kind="system",
        user_id=member_id,
        role=Role.PANEL_MEMBER,
        label="seed",
        request_id=actor.request_id,
    )
    published = []
    for spec in STARTER_SET:
        if policies.find_policy(session, spec["slug"]) is not None:
            continue
        data = {k: v for k, v in spec.items() if k != "public_benefit"}
        version = policies.create_policy(session, editor, data)
        review = reviews.submit(
            session,
            editor,
            version,
            panel.id,
            utcnow() + timedelta(days=1),
            spec.get("public_benefit"),
        )
        reviews.cast_vote(session, member, review.id, Choice.ENDORSE, "")
        reviews.close(session, editor, review, RECOMMENDATION)
        policies.publish(session, editor, spec["slug"], version.number)
        published.append(spec["slug"])
    return published
