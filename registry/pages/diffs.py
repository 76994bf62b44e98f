"""A comparison of two versions (``registry.api.policies.compare``) in words and rows."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from registry.pages import words

TEXT_LABELS = (
    ("summary", "Summary"),
    ("body", "Policy text"),
    ("rationale", "Why it changed"),
)
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def _params(code: str, parameters: Mapping[str, Any]) -> str:
    return words.parameter_sentence(code, parameters) or "No further limits."


def meaning(diff: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each change of meaning as a sentence, with the way it moves access."""
    items: list[dict[str, str]] = []
    conditions = diff["conditions"]
    for c in conditions["added"]:
        entry = words.condition(c["code"], c["parameters"])
        items.append(
            {
                "what": f"Condition added: {entry['title']}",
                "detail": " ".join(x for x in (entry["description"], entry["parameters"]) if x),
                "direction": str(c["direction"]),
            }
        )
    for c in conditions["removed"]:
        entry = words.condition(c["code"], c["parameters"])
        items.append(
            {
                "what": f"Condition removed: {entry['title']}",
                "detail": f"It said: {entry['description']} {entry['parameters']}".strip(),
                "direction": str(c["direction"]),
            }
        )
    for c in conditions["changed"]:
        items.append(
            {
                "what": f"Condition changed: {words.title_of(c['code'])}",
                "detail": f"Before: {_params(c['code'], c['from'])} "
                f"After: {_params(c['code'], c['to'])}",
                "direction": str(c["direction"]),
            }
        )
    sensitive = diff["sensitive_categories"]
    if sensitive["added"]:
        items.append(
            {
                "what": "Now covers sensitive records about " + words.sensitive(sensitive["added"]),
                "detail": "Uses touching these records can be decided under this policy "
                "instead of being referred to a citizen panel.",
                "direction": "loosens",
            }
        )
    if sensitive["removed"]:
        items.append(
            {
                "what": "No longer covers sensitive records about "
                + words.sensitive(sensitive["removed"]),
                "detail": "Uses touching these records go to a citizen panel unless "
                "another policy covers them.",
                "direction": "tightens",
            }
        )
    retirement = diff["retirement"]
    if retirement["from"] != retirement["to"]:
        items.append(
            {
                "what": "The policy is retired" if retirement["to"] else "The policy returns",
                "detail": "Its conditions no longer apply and it leaves the policy set."
                if retirement["to"]
                else "It is part of the policy set again.",
                "direction": "tightens" if retirement["to"] else "loosens",
            }
        )
    effective = diff["effective_from"]
    if effective["from"] != effective["to"]:
        before = words.when(effective["from"]) or "when published"
        after = words.when(effective["to"]) or "when published"
        items.append(
            {
                "what": "Takes effect at a different time",
                "detail": f"Before: {before}. After: {after}.",
                "direction": "",
            }
        )
    return items


def marks(diff: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """Which conditions to point out in each column of a side-by-side view."""
    old: dict[str, str] = {}
    new: dict[str, str] = {}
    if diff:
        conditions = diff["conditions"]
        for c in conditions["removed"]:
            old[c["code"]] = "Removed"
        for c in conditions["added"]:
            new[c["code"]] = "Added"
        for c in conditions["changed"]:
            old[c["code"]] = new[c["code"]] = "Changed"
    return {"old": old, "new": new}


def rows(unified: str) -> list[dict[str, Any]]:
    """A unified diff as table rows: hunks, added, removed and unchanged lines."""
    out: list[dict[str, Any]] = []
    old_line = new_line = 0
    for line in unified.splitlines():
        if line.startswith(("--- ", "+++ ")):
            continue
        match = _HUNK.match(line)
        if match:
            old_line, new_line = int(match.group(1)), int(match.group(2))
            out.append({"kind": "hunk", "text": f"From line {new_line} of the newer version"})
            continue
        if line.startswith("\\"):
            continue  # "\ No newline at end of file"
        sign, text = line[:1], line[1:]
        if sign == "+":
            out.append({"kind": "added", "text": text, "line": new_line})
            new_line += 1
        elif sign == "-":
            out.append({"kind": "removed", "text": text, "line": old_line})
            old_line += 1
        else:
            out.append({"kind": "same", "text": text, "line": new_line})
            old_line += 1
            new_line += 1
    return out


def text_sections(diff: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": name, "label": label, "rows": rows(diff["text"].get(name, ""))}
        for name, label in TEXT_LABELS
    ]
