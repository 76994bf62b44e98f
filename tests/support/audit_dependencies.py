"""pip-audit of the locked dependencies, with an unreachable advisory database reported.

    python -m tests.support.audit_dependencies constraints.txt

Exit 1 when any locked dependency has a known vulnerability; exit 0 otherwise, printing
plainly how many dependencies could not be checked and why (these machines often cannot
reach the advisory database: that must be visible, not mistaken for a clean bill).
"""

from __future__ import annotations

import json
import subprocess
import sys


def main(path: str) -> int:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip_audit",
            "-r",
            path,
            "--no-deps",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print("pip-audit: the advisory database could not be reached; NOTHING WAS AUDITED.")
        print((result.stderr or result.stdout).strip().splitlines()[-1:])
        return 0
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    unchecked = [d for d in dependencies if d.get("skip_reason")]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            print(
                f"pip-audit: {dependency['name']} {dependency['version']}: {vuln['id']} "
                f"(fixed in {', '.join(vuln.get('fix_versions') or ['nothing yet'])})"
            )
    audited = len(dependencies) - len(unchecked)
    print(
        f"pip-audit: {audited} of {len(dependencies)} locked dependencies audited, "
        f"{len(vulnerable)} with known vulnerabilities."
    )
    if unchecked:
        reasons = sorted({d["skip_reason"].split(":")[0] for d in unchecked})
        print(
            f"pip-audit: WARNING: {len(unchecked)} could not be audited ({'; '.join(reasons)}):"
            " the advisory database did not answer for them."
        )
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "constraints.txt"))
