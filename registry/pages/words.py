"""Plain English for the pages: purposes, kinds of data, conditions, outcomes, times.

Presentation only. What a condition *means* comes from the catalogue (its title and
description); this module only turns its parameters and codes into sentences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from registry.services import catalogue, chain


def _london() -> tuple[tzinfo, str]:
    try:
        return ZoneInfo("Europe/London"), "London time"
    except ZoneInfoNotFoundError:  # a machine without time zone data
        return UTC, "UTC"


LONDON, ZONE_NAME = _london()

PURPOSES: dict[str, tuple[str, str]] = {
    "individual_care": (
        "Individual care",
        "Using information about a person to care for that person.",
    ),
    "planning": (
        "Planning",
        "Using information about many people to plan and improve health and care services.",
    ),
    "research": (
        "Research",
        "Using information about many people to find new knowledge, such as better treatments.",
    ),
}
PURPOSE_ORDER = ("individual_care", "planning", "research")

DATA_CATEGORIES: dict[str, str] = {
    "personal": "personal data (it identifies people)",
    "depersonalised": "de-personalised data",
    "anonymous": "anonymous data",
}

# Terms the pages use, explained in a sentence each (the summit asked for plain words).
GLOSSARY: tuple[tuple[str, str, str], ...] = (
    (
        "personal-data",
        "Personal data",
        "Information that identifies a person, such as their name, address or NHS number, "
        "with details of their health or care.",
    ),
    (
        "depersonalised-data",
        "De-personalised data",
        "Data with names, addresses and NHS numbers removed or replaced by codes: people "
        "are not easy to identify, but someone linking it with other information might, "
        "so strict conditions apply.",
    ),
    (
        "anonymous-data",
        "Anonymous data",
        "Data that cannot identify anyone, such as counts and statistics about groups "
        "large enough that no one can be picked out.",
    ),
    (
        "individual-care",
        "Individual care",
        "The care and treatment of one person by the health and care professionals "
        "looking after them.",
    ),
    (
        "planning",
        "Planning",
        "Using data about many people to plan and improve services, for example to "
        "decide where a new clinic is needed.",
    ),
    (
        "research",
        "Research",
        "Using data to discover new knowledge, such as which treatments work best, in "
        "studies that an ethics committee has approved.",
    ),
    (
        "national-data-opt-out",
        "National data opt-out",
        "A choice anyone in England can register to stop their confidential information "
        "being used for research and planning; it does not affect their own care.",
    ),
    (
        "trusted-research-environment",
        "Trusted research environment",
        "A secure computer system where approved people analyse data without it ever "
        "being sent to them; only checked results leave it.",
    ),
    (
        "citizen-panel",
        "Citizen panel",
        "A group of Londoners who read every proposed change to these policies and vote "
        "on whether it should go ahead.",
    ),
)

KINDS: dict[str, str] = {
    "requires": "Requirement",
    "prohibits": "Not allowed",
    "duty": "Duty on the data user",
}

ORGANISATION_KINDS: dict[str, str] = {
    "nhs_trust": "NHS trusts",
    "icb": "integrated care boards",
    "gp_practice": "GP practices",
    "local_authority": "local authorities",
    "university": "universities",
    "charity": "charities",
    "company": "companies",
}

COUNTRIES: dict[str, str] = {"GB": "the United Kingdom"}

SENSITIVE: dict[str, str] = {
    "mental_health": "mental health",
    "self_harm": "self-harm",
    "sexual_health": "sexual health",
    "hiv": "HIV",
    "fertility": "fertility",
    "abortion": "abortion",
    "substance_misuse": "substance misuse",
}

OUTCOMES: dict[str, str] = {
    "endorsed": "Endorsed",
    "rejected": "Rejected",
    "no_quorum": "Not decided: too few members voted",
    "withdrawn": "Withdrawn before a decision",
}

DECISIONS: dict[str, str] = {
    "permitted": "permitted",
    "permitted_with_duties": "permitted, with duties",
    "refused": "refused",
    "referred_to_panel": "referred to a citizen panel",
    "no_applicable_policy": "no policy applies",
}

CHOICES: dict[str, tuple[str, str]] = {
    "endorse": ("Endorse", "The change should go ahead as it is."),
    "endorse_with_changes": (
        "Endorse with changes",
        "The change should go ahead, with the changes you describe.",
    ),
    "reject": ("Reject", "The change should not go ahead."),
    "abstain": ("Abstain", "You take part without supporting or opposing the change."),
}

DIRECTIONS: dict[str, str] = {
    "tightens": "tightens the rules (less access to data, or more safeguards)",
    "loosens": "loosens the rules (more access to data, or fewer safeguards)",
    "mixed": "tightens some rules and loosens others",
    "unchanged": "leaves the conditions as they were",
}

CHANGES: dict[str, str] = {
    "added": "added to the set",
    "replaced": "replaced",
    "retired": "retired (taken out of the set)",
}

STATUSES: dict[str, str] = {
    "published": "In force",
    "superseded": "Replaced by a later version",
    "draft": "Draft",
    "in_review": "In review",
    "endorsed": "Endorsed, not yet published",
    "rejected": "Rejected",
    "withdrawn": "Withdrawn",
}


def plural(count: int, singular: str, many: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def listing(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if not items:
        return "none"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def purpose(code: str) -> str:
    return PURPOSES.get(code, (code.replace("_", " ").capitalize(), ""))[0]


def data_category(code: str) -> str:
    return DATA_CATEGORIES.get(code, code.replace("_", " "))


def sensitive(codes: Sequence[str]) -> str:
    return listing([SENSITIVE.get(c, c.replace("_", " ")) for c in codes])


def outcome(code: str | None) -> str:
    if code is None:
        return "Not decided yet"
    return OUTCOMES.get(code, code.replace("_", " ").capitalize())


def decision(code: str) -> str:
    return DECISIONS.get(code, code.replace("_", " "))


def transition(change: str) -> tuple[str, str]:
    """``"permitted -> refused"`` (as the impact report counts them) in words."""
    before, _, after = change.partition(" -> ")
    return decision(before), decision(after)


def choice(code: str) -> str:
    return CHOICES.get(code, (code.replace("_", " ").capitalize(), ""))[0]


def direction(code: str) -> str:
    return DIRECTIONS.get(str(code), str(code))


def status(code: str) -> str:
    return STATUSES.get(code, code.replace("_", " ").capitalize())


# --- conditions ---------------------------------------------------------------------------


def parameter_sentence(code: str, parameters: Mapping[str, Any]) -> str:
    """A condition's parameters as a sentence ("Access lasts at most 36 months.")."""
    sentences = []
    for name, value in sorted(parameters.items()):
        sentences.append(_parameter(name, value))
    return " ".join(sentences)


def _parameter(name: str, value: Any) -> str:
    if name == "max_months":
        return f"Access lasts at most {plural(int(value), 'month')}."
    if name == "max_users":
        return f"At most {plural(int(value), 'named person', 'named people')} may have access."
    if name == "within_days":
        return f"This must be done within {plural(int(value), 'day')}."
    if name == "within_months":
        return f"This must be done within {plural(int(value), 'month')}."
    if name == "organisation_kinds":
        kinds = [ORGANISATION_KINDS.get(str(k), str(k)) for k in value]
        return f"Allowed kinds of organisation: {listing(kinds)}."
    if name == "allowed_countries":
        places = [f"{COUNTRIES.get(str(c), str(c))} ({c})" for c in value]
        return f"Allowed countries: {listing(places)}."
    if name == "applies_to":
        if value == "all":
            return "This applies to every use, whether or not a company is involved."
        return "This applies when a company is involved."
    shown = listing([str(v) for v in value]) if isinstance(value, list) else str(value)
    return f"{name.replace('_', ' ').capitalize()}: {shown}."


def condition(code: str, parameters: Mapping[str, Any]) -> dict[str, str]:
    """Title, kind, meaning and parameters of an attached condition, in words."""
    entry = catalogue.get(code)
    return {
        "code": code,
        "title": entry.title if entry else code.replace("_", " ").capitalize(),
        "kind": KINDS.get(str(entry.kind), "Requirement") if entry else "Requirement",
        "description": entry.description if entry else "",
        "parameters": parameter_sentence(code, parameters),
    }


def title_of(code: str) -> str:
    entry = catalogue.get(code)
    return entry.title if entry else code.replace("_", " ").capitalize()


# --- times --------------------------------------------------------------------------------


def as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = chain.parse_time(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def when(value: datetime | str | None) -> str:
    """``3 March 2025 at 14:05`` in London (or UTC without time zone data)."""
    moment = as_datetime(value)
    if moment is None:
        return ""
    local = moment.astimezone(LONDON)
    return f"{local.day} {local:%B %Y} at {local:%H:%M}"


def day(value: datetime | date | str | None) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return f"{value.day} {value:%B %Y}"
    moment = as_datetime(value)
    if moment is None:
        return ""
    local = moment.astimezone(LONDON)
    return f"{local.day} {local:%B %Y}"


def iso(value: datetime | str | None) -> str:
    moment = as_datetime(value)
    return moment.isoformat() if moment else ""


def end_of_day(chosen: date) -> datetime:
    """The last instant of ``chosen`` in London (UTC without time zone data), in UTC.

    Found without stepping into the next day, which after 9999-12-31 does not exist.
    """
    return datetime.combine(chosen, time.max, tzinfo=LONDON).astimezone(UTC)


def time_left(closes_at: datetime | str, now: datetime) -> str:
    """``closes in 3 days``, ``closes in 5 hours``, ``closes in a few minutes``."""
    moment = as_datetime(closes_at)
    if moment is None:
        return ""
    left = moment - now
    if left <= timedelta(0):
        return "closing now"
    if left >= timedelta(days=2):
        return f"closes in {plural(left.days, 'day')}"
    hours = int(left.total_seconds() // 3600)
    if hours >= 1:
        return f"closes in {plural(hours, 'hour')}"
    minutes = int(left.total_seconds() // 60)
    if minutes >= 2:
        return f"closes in {minutes} minutes"
    return "closes in a minute or two"


def tally(counts: Mapping[str, Any] | None) -> str:
    """``3 of 4 eligible members' votes counted: 2 endorse, 1 reject.``"""
    if not counts:
        return "No votes."
    parts = [
        f"{counts.get(key, 0)} {label.lower()}"
        for key, (label, _hint) in CHOICES.items()
        if key in counts
    ]
    counted = int(counts.get("counted", 0))
    eligible = int(counts.get("eligible", 0))
    sentence = (
        f"{plural(counted, 'vote')} counted of {plural(eligible, 'eligible member')}: "
        f"{listing(parts)}."
    )
    not_counted = int(counts.get("not_counted", 0))
    if not_counted:
        sentence += f" {plural(not_counted, 'vote')} recorded but not counted."
    return sentence
