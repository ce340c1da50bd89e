"""Counts per module and every surviving mutant of a cosmic-ray session, with its diff.

python tests/mutation/survivors.py SESSION.sqlite
"""

from __future__ import annotations

import collections
import sys

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome


def main(session: str) -> None:
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    survivors = []
    with use_db(session, WorkDB.Mode.open) as db:
        results = dict(db.results)
        for item in db.work_items:
            (spec,) = item.mutations
            module = str(spec.module_path)
            result = results.get(item.job_id)
            if result is None:
                counts[module]["pending"] += 1
            elif result.worker_outcome == WorkerOutcome.SKIPPED:
                said = result.output or ""
                kind = "equivalent" if said.startswith("equivalent") else "filtered"
                counts[module][kind] += 1
            elif result.test_outcome == TestOutcome.SURVIVED:
                counts[module]["survived"] += 1
                survivors.append((item, spec, result))
            elif result.test_outcome == TestOutcome.KILLED:
                counts[module]["killed"] += 1
            else:
                counts[module][str(result.test_outcome or result.worker_outcome)] += 1
    for module, counter in sorted(counts.items()):
        print(module, dict(sorted(counter.items())))
    for item, spec, result in survivors:
        print(
            f"\n### {item.job_id} {spec.module_path}:{spec.start_pos[0]} {spec.operator_name}"
            f" #{spec.occurrence}"
        )
        print(result.diff)


if __name__ == "__main__":
    main(sys.argv[1])
