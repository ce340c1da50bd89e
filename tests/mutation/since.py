"""Mark as skipped every mutant that lies on no line changed since a commit (`run.sh` with SINCE).

    python tests/mutation/since.py SESSION.sqlite ROOT COMMIT [OLD_SESSION.sqlite]

ROOT is the git work tree the session's files were copied from; a module's changed lines are
the new side of `git diff -U0 COMMIT -- MODULE` there (added and modified lines; a hunk that only
deletes lines marks none: the lines around it were mutated and tested at COMMIT). A mutant counts
as changed when any line from its start to its end is. The others are recorded as skipped with
the output "filtered: unchanged since COMMIT", so a session runs only the code changed since a
full run was made on COMMIT, and `survivors.py` counts the rest as "filtered".

COMMIT may also be a range SINCE..UNTIL: then a module's changed lines are those of the work
tree that changed between SINCE and UNTIL (the new side of `git diff -U0 SINCE UNTIL`) and not
since UNTIL (carried to their numbers of now through `git diff -U0 UNTIL`; a line changed again
after UNTIL is left out): the mutants a session on UNTIL ran with SINCE, on the lines they still
hold, as when a stopped session's file is gone (run 6: `be75988..2af6a0f`, run 3's
`remove/posix.py`).

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

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", re.MULTILINE)


def _hunks(root: Path, module: str, *commits: str) -> list[tuple[int, int, int, int]]:
    """(old start, old count, new start, new count) of each hunk of `git diff -U0 COMMITS`."""
    diff = subprocess.run(
        ["git", "-C", str(root), "diff", "-U0", *commits, "--", module],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [(int(m[1]), int(m[2] or "1"), int(m[3]), int(m[4] or "1")) for m in HUNK.finditer(diff)]


def _unchanged(root: Path, module: str, commit: str) -> dict[int, int]:
    """Each line of MODULE at COMMIT that the work tree still has unchanged: its number now."""
    old_count = subprocess.run(
        ["git", "-C", str(root), "show", f"{commit}:{module}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.count("\n")
    moved: dict[int, int] = {}
    old = new = 1
    for old_start, old_lines, new_start, new_lines in _hunks(root, module, commit):
        # a hunk of no lines on one side lies after its start line there
        first_old = old_start if old_lines else old_start + 1
        first_new = new_start if new_lines else new_start + 1
        while old < first_old:
            moved[old] = new
            old, new = old + 1, new + 1
        old, new = first_old + old_lines, first_new + new_lines
    while old <= old_count:
        moved[old] = new
        old, new = old + 1, new + 1
    return moved


def changed_lines(root: Path, commit: str, module: str) -> set[int]:
    since, until = commit.split("..") if ".." in commit else (commit, "")
    lines: set[int] = set()
    for _old, _count, start, count in _hunks(root, module, since, *([until] if until else [])):
        lines.update(range(start, start + count))
    if until:
        moved = _unchanged(root, module, until)
        lines = {moved[line] for line in lines if line in moved}
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
