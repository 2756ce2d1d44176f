"""``pytest tests/gpu`` in a subprocess: pass / fail / skip per test from its JUnit XML (deselected without CUDA)."""
from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from benchmarks.common import REPO


def run(work: Path, timeout_s: float) -> dict:
    junit = work / "gpu_tests.xml"
    command = [sys.executable, "-m", "pytest", "tests/gpu", "-q", "-rA", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    try:
        completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=max(1.0, timeout_s))
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout.decode(errors="replace") if isinstance(expired.stdout, bytes) else expired.stdout or ""
        return {"returncode": None, "error": f"timed out after {timeout_s:.0f} s", "output_tail": output[-2000:]}
    cases = {}
    if junit.is_file():  # pytest wrote it into our own work dir
        for case in ElementTree.parse(junit).getroot().iter("testcase"):
            outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
            message = next((child.get("message", "") for child in case if child.tag != "system-out"), "")
            cases[f"{case.get('classname')}.{case.get('name')}"] = {
                "outcome": {"failure": "failed"}.get(outcome, outcome), "seconds": float(case.get("time", 0)),
                **({"message": message[:300]} if message else {})}
    deselected = re.search(r"(\d+) deselected", completed.stdout)
    counts = {outcome: sum(case["outcome"] == outcome for case in cases.values())
              for outcome in ("passed", "failed", "error", "skipped")}
    return {"returncode": completed.returncode, "cases": cases, **counts,
            "deselected": int(deselected.group(1)) if deselected else 0, "output_tail": completed.stdout[-1500:]}
