"""Test a session's survivors again, with the tests as they are now in the work tree.

    python tests/mutation/retest.py GROUP SCRATCH [MODULE:LINE...]
    (SCRATCH: where `run.sh GROUP` ran; with MODULE:LINE, only the survivors on those lines,
    e.g. app/uvsweep/remove/posix.py:315)

With RETEST_SUSPECTS=1, the kills a loaded machine could fake (`suspects.py`: a mutant stopped
at the session's timeout, or a test that failed by a timeout of its own) are tested again too;
with RETEST_SUSPECTS=only, those alone.

Copies the work tree's `tests/` over SCRATCH's (the source stays the copy the session mutated),
runs each surviving mutant again with GROUP's test command as it is now, and records the verdict
in SCRATCH/session.sqlite. Then prints the counts and the survivors left (`survivors.py`).
Run it with the environment `run.sh` sets (it does not set it itself; see tests/MUTATION.md).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from cosmic_ray.config import load_config
from cosmic_ray.mutating import mutate_and_test
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suspects import suspect

ROOT = Path(__file__).resolve().parents[2]


def main(group: str, scratch: Path, lines: frozenset[str] = frozenset()) -> None:
    shutil.copytree(ROOT / "tests", scratch / "tests", dirs_exist_ok=True)
    os.chdir(scratch)
    command = next(
        line
        for line in (ROOT / "tests" / "mutation" / f"{group}.toml").read_text().splitlines()
        if line.startswith("test-command = ")
    )
    session = Path("session.toml")
    session.write_text(
        "\n".join(
            command if line.startswith("test-command = ") else line
            for line in session.read_text().splitlines()
        )
        + "\n"
    )
    config = load_config("session.toml")
    suspects = os.environ.get("RETEST_SUSPECTS", "")
    with use_db("session.sqlite", WorkDB.Mode.open) as db:
        results = dict(db.results)
        todo = [
            item
            for item in db.work_items
            if (found := results.get(item.job_id)) is not None
            and (
                (found.test_outcome == TestOutcome.SURVIVED and suspects != "only")
                or (suspects in ("1", "only") and suspect(found) is not None)
            )
            and (
                not lines
                or f"{item.mutations[0].module_path}:{item.mutations[0].start_pos[0]}" in lines
            )
        ]
        print(f"retesting {len(todo)} mutants", flush=True)
        for item in todo:
            result = mutate_and_test(item.mutations, config.test_command, config.timeout)
            db.set_result(item.job_id, result)
            (spec,) = item.mutations
            print(f"{result.test_outcome}: {spec.module_path}:{spec.start_pos[0]}"
                  f" {spec.operator_name}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]).resolve(), frozenset(sys.argv[3:]))
