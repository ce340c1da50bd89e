"""Mark as skipped every mutant that lies on no line changed since a commit (`run.sh` with SINCE).

    python tests/mutation/since.py SESSION.sqlite ROOT COMMIT [OLD_SESSION.sqlite]

ROOT is the git work tree the session's files were copied from; a module's changed lines are
the new side of `git diff -U0 COMMIT -- MODULE` there (added and modified lines; a hunk that only
deletes lines marks none: the lines around it were mutated and tested at COMMIT). A mutant counts
as changed when any line from its start to its end is. The others are recorded as skipped with
the output "filtered: unchanged since COMMIT", so a session runs only the code changed since a
full run was made on COMMIT, and `survivors.py` counts the rest as "filtered".

With OLD_SESSION (a session made on COMMIT and stopped before it was done), the mutants it left
pending on lines that did not change are run too: an unchanged line keeps its text, so such a
mutant is the one with the same operator at the same place on the line's new number.
"""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
from pathlib import Path

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult

HUNK = re.compile(r"^@@ -\S+ \+(\d+)(?:,(\d+))? @@", re.MULTILINE)


def changed_lines(root: Path, commit: str, module: str) -> set[int]:
    diff = subprocess.run(
        ["git", "-C", str(root), "diff", "-U0", commit, "--", module],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines: set[int] = set()
    for match in HUNK.finditer(diff):
        start, count = int(match[1]), int(match[2] or "1")
        lines.update(range(start, start + count))
    return lines


def left_pending(old_session: str, root: Path, commit: str) -> set[tuple[str, int, int, str]]:
    """(module, new line, column, operator) of each mutant OLD_SESSION never ran, on a line
    that did not change since COMMIT."""
    found: set[tuple[str, int, int, str]] = set()
    moved: dict[str, dict[int, int]] = {}
    with use_db(old_session, WorkDB.Mode.open) as db:
        for item in db.pending_work_items:
            (spec,) = item.mutations
            module = str(spec.module_path)
            if module not in moved:
                old = subprocess.run(
                    ["git", "-C", str(root), "show", f"{commit}:{module}"],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.splitlines()
                new = (root / module).read_text().splitlines()
                same = difflib.SequenceMatcher(None, old, new, False).get_matching_blocks()
                moved[module] = {
                    block.a + i + 1: block.b + i + 1 for block in same for i in range(block.size)
                }
            line = moved[module].get(spec.start_pos[0])
            if line is not None:
                found.add((module, line, spec.start_pos[1], spec.operator_name))
    return found


def main(session: str, root: str, commit: str, old_session: str = "") -> None:
    changed: dict[str, set[int]] = {}
    carried = left_pending(old_session, Path(root), commit) if old_session else set()
    kept = skipped = 0
    with use_db(session, WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            (spec,) = item.mutations
            module = str(spec.module_path)
            if module not in changed:
                changed[module] = changed_lines(Path(root), commit, module)
            span = range(spec.start_pos[0], spec.end_pos[0] + 1)
            place = (module, spec.start_pos[0], spec.start_pos[1], spec.operator_name)
            if changed[module].intersection(span) or place in carried:
                kept += 1
                continue
            db.set_result(
                item.job_id,
                WorkResult(
                    output=f"filtered: unchanged since {commit}",
                    worker_outcome=WorkerOutcome.SKIPPED,
                ),
            )
            skipped += 1
    print(f"{kept} mutants kept (changed since {commit}, or left pending), {skipped} skipped")


if __name__ == "__main__":
    main(*sys.argv[1:5])
