"""Compare two versions of a policy: the text as a unified diff, the conditions by meaning.

Pure: works on the content documents that the content hash covers.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from registry.services import catalogue
from registry.services.catalogue import Direction

TEXT_FIELDS = ("summary", "body", "rationale")


def unified(old: str, new: str, old_name: str, new_name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=old_name,
        tofile=new_name,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def compare_conditions(
    old: list[Mapping[str, Any]], new: list[Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Added, removed and changed conditions, each with the direction it moves access."""
    before = {c["code"]: c for c in old}
    after = {c["code"]: c for c in new}
    added, removed, changed = [], [], []
    for code in sorted(after.keys() - before.keys()):
        entry = catalogue.get(code)
        kind = entry.kind if entry else catalogue.Kind.REQUIRES
        added.append(
            {
                "code": code,
                "kind": kind,
                "parameters": after[code]["parameters"],
                "direction": catalogue.addition_direction(),
            }
        )
    for code in sorted(before.keys() - after.keys()):
        entry = catalogue.get(code)
        kind = entry.kind if entry else catalogue.Kind.REQUIRES
        removed.append(
            {
                "code": code,
                "kind": kind,
                "parameters": before[code]["parameters"],
                "direction": catalogue.removal_direction(),
            }
        )
    for code in sorted(before.keys() & after.keys()):
        old_params, new_params = before[code]["parameters"], after[code]["parameters"]
        if old_params == new_params:
            continue
        entry = catalogue.get(code)
        direction = entry.compare(old_params, new_params) if entry else Direction.MIXED
        changed.append(
            {
                "code": code,
                "kind": entry.kind if entry else None,
                "from": old_params,
                "to": new_params,
                "direction": direction,
            }
        )
    return {"added": added, "removed": removed, "changed": changed}


def compare_sensitive(old: list[str], new: list[str]) -> dict[str, Any]:
    """Covering a sensitive category lets decisions proceed without referral: it loosens."""
    gained = sorted(set(new) - set(old))
    lost = sorted(set(old) - set(new))
    directions = ([Direction.LOOSENS] if gained else []) + ([Direction.TIGHTENS] if lost else [])
    return {
        "added": gained,
        "removed": lost,
        "direction": catalogue.combine(directions),
    }


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The whole comparison of two content documents (``content.content_document``)."""
    old_name = f"{old['policy']} v{old['version']}"
    new_name = f"{new['policy']} v{new['version']}"
    conditions = compare_conditions(old["conditions"], new["conditions"])
    sensitive = compare_sensitive(old["sensitive_categories"], new["sensitive_categories"])
    directions = [c["direction"] for group in conditions.values() for c in group]
    directions.append(sensitive["direction"])
    if old["retirement"] != new["retirement"]:
        directions.append(Direction.TIGHTENS if new["retirement"] else Direction.LOOSENS)
    return {
        "text": {name: unified(old[name], new[name], old_name, new_name) for name in TEXT_FIELDS},
        "conditions": conditions,
        "sensitive_categories": sensitive,
        "effective_from": {"from": old["effective_from"], "to": new["effective_from"]},
        "retirement": {"from": old["retirement"], "to": new["retirement"]},
        "direction": catalogue.combine(directions),
    }
