"""The README's commands, run as written against a live server.

A new user follows the README literally: every ``sh`` block of the walkthrough, the
question and the audit trail runs in one shell, in order, against gunicorn on a database
loaded as ``make run`` loads it. Every curl must succeed (an HTTP error stops the run), and
the outcome is what the README says it is.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from registry.services import note
from tests.support.server import call, environment, gunicorn

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# The sections whose commands run against a server, in the order a reader meets them.
SECTIONS = (
    "## A change, end to end, with curl",
    "## The audit trail, and how to check it yourself",
)


def blocks() -> list[str]:
    """The ``sh`` blocks of the sections above, in order."""
    text = README.read_text()
    found: list[str] = []
    for heading in SECTIONS:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        section = text[start : end if end != -1 else None]
        found += re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return found


def test_the_readme_has_the_blocks_this_test_runs() -> None:
    found = blocks()
    assert len(found) == 3
    assert "older-checkpoint.txt" in found[0]
    assert "AUDITOR=" in found[0]
    assert "registry.verify" in found[2]


def test_the_readme_runs_as_written(
    app: Flask, database: Any, signing_key_file: Path, tmp_path: Path
) -> None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    assert not missing, f"the README needs {missing}: install them (make test does)"
    # As make run ships it: rate limits on.
    config = database.app_config(signing_key_file, RATELIMIT_ENABLED=True)
    env = environment(config, tmp_path / "instance") | {"HOME": str(tmp_path)}
    bin_dir = str(Path(sys.executable).parent)
    work = tmp_path / "reader"
    work.mkdir()
    subprocess.run(
        [f"{bin_dir}/flask", "--app", "wsgi", "registry", "seed"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    with gunicorn(config, tmp_path / "instance", workers=2) as base:
        script = "\n".join(blocks())
        script = script.replace("http://127.0.0.1:5000", base)
        script = script.replace(".venv/bin/", f"{bin_dir}/")
        prelude = (
            "set -euo pipefail\n"
            # An HTTP error stops the walkthrough, with the problem it answered.
            'curl() { command curl --fail-with-body "$@"; }\n'
            f"cd {work}\n"
        )
        # The reader runs from the checkout; here the files they keep go elsewhere, so
        # flask (which finds wsgi.py in the working directory) runs from the checkout.
        script = script.replace(
            f'flask() {{ {bin_dir}/flask --app wsgi "$@"; }}',
            f'flask() {{ (cd {ROOT} && {bin_dir}/flask --app wsgi "$@"); }}',
        )
        done = subprocess.run(
            ["bash", "-c", prelude + script + "\necho README-DONE\n"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-4000:]
        assert "README-DONE" in done.stdout

        # What the walkthrough says it did, it did.
        status, _, version = call(
            base, "GET", "/api/v1/policies/research-depersonalised/versions/2"
        )
        assert status == 200
        assert version["status"] == "published"
        limits = [c for c in version["conditions"] if c["code"] == "time_limited"]
        assert [c["parameters"]["max_months"] for c in limits] == [24]
        assert "for at most 24 months" in version["body"]
        assert "36 months" not in version["body"]
        status, _, in_force = call(base, "GET", "/api/v1/policy-set")
        cited = {p["slug"]: p["version"]["number"] for p in in_force["policies"]}
        assert cited["research-depersonalised"] == 2

    # The files the README told the reader to keep are there, and they verify.
    vkey = note.parse_vkey((work / "registry.vkey").read_text())
    older, _ = note.open_note((work / "older-checkpoint.txt").read_text(), [vkey])
    newer, _ = note.open_note((work / "checkpoint.txt").read_text(), [vkey])
    assert 0 < note.parse_checkpoint(older).size < note.parse_checkpoint(newer).size
    assert (work / "export.jsonl").stat().st_size > 0
    # The question was answered, and cited the new version.
    # (A decision is canonical JSON, keys sorted, so it is the document starting {"as_of".)
    answer, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index('{"as_of"') :])
    assert answer["outcome"] in ("permitted", "permitted_with_duties")
    assert {"slug": "research-depersonalised", "version": 2} in [
        {"slug": p["slug"], "version": p["version"]} for p in answer["policies"]
    ]
