"""The kills of a cosmic-ray session that a loaded machine could fake: the mutant was stopped at
the session's timeout, or the test that failed did so by a timeout of its own (`TimeoutExpired`,
a child that said nothing in time). Each is worth running again (`retest.py` takes MODULE:LINE)
or judging by hand before it is counted as killed.

    python tests/mutation/suspects.py SESSION.sqlite
"""

from __future__ import annotations

import re
import sys

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkResult

SIGNS = re.compile(r"TimeoutExpired|said nothing for|timed out|Timeout")


def suspect(result: WorkResult) -> str | None:
    """Why this kill could be the machine's load, or None."""
    if result.test_outcome != TestOutcome.KILLED:
        return None
    output = result.output or ""
    if output.strip() == "timeout":
        return "session timeout"
    failed = re.findall(r"^FAILED (\S+)", output, re.MULTILINE)
    if failed and SIGNS.search(output):
        return ", ".join(failed)
    return None


def main(session: str) -> None:
    with use_db(session, WorkDB.Mode.open) as db:
        results = dict(db.results)
        for item in db.work_items:
            result = results.get(item.job_id)
            why = suspect(result) if result is not None else None
            if why is not None:
                (spec,) = item.mutations
                print(
                    f"{spec.module_path}:{spec.start_pos[0]} {spec.operator_name}"
                    f" #{spec.occurrence}: {why}"
                )


if __name__ == "__main__":
    main(sys.argv[1])
