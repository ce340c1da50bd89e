"""Put off the pending mutants of some functions, or take them up again.

    python tests/mutation/defer.py SESSION.sqlite MODULE FUNCTION...   (defer)
    python tests/mutation/defer.py SESSION.sqlite --undo                (pending again)
    python tests/mutation/defer.py SESSION.sqlite --only MODULE FUNCTION...
    (MODULE FUNCTION... may be repeated: a word ending in .py starts the next module)
        (defer every pending mutant but those of the named functions of MODULE; a name
        FUNCTION@ROW:COL keeps only that function's mutants that start at ROW:COL of the
        module as the session has it: one left pending by an older session, say)

cosmic-ray runs a session's pending mutants in random order; when not all of them can be run,
this makes the ones of the named functions (of MODULE, as the session names it; `<module>` for
code outside any function) be skipped with the output "deferred: ...", so that the others run
first. With `--only`, the other way round: only the named functions' mutants stay pending
(the mutants of other modules of the session are deferred too); `run.sh` does this with
`ONLY="MODULE FUNCTION..."`, to run what an older session deferred. `survivors.py` counts
them as filtered. Stop the session first (its list of pending mutants is read once, when it
starts), then resume it (`resume.sh`).
"""

from __future__ import annotations

import ast
import sqlite3
import sys

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult

DEFERRED = "deferred: put off for lack of time (tests/mutation/defer.py)"


def function_at(tree: ast.Module) -> dict[int, str]:
    """The innermost function or class around each line of a module."""
    found: dict[int, str] = {}
    spans = sorted(
        (node.lineno, node.end_lineno or node.lineno, node.name)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    )
    for first, last, name in spans:  # outer ones first: inner ones overwrite their lines
        for line in range(first, last + 1):
            found[line] = name
    return found


def main(session: str, *args: str) -> None:
    if args == ("--undo",):
        with sqlite3.connect(session) as db:
            undone = db.execute("DELETE FROM work_results WHERE output LIKE 'deferred:%'")
        print(f"{undone.rowcount} mutants pending again")
        return
    only = args[:1] == ("--only",)
    # MODULE FUNCTION... [MODULE FUNCTION...]: a word ending in .py starts the next module
    places: dict[str, set[tuple[str, str]]] = {}
    for word in args[1:] if only else args:
        if word.endswith(".py"):
            module = word
            places[module] = set()
        else:
            function, _, place = word.partition("@")
            places[module].add((function, place))
    where: dict[str, dict[int, str]] = {}
    for module in places:
        with open(module, encoding="utf-8") as source:
            where[module] = function_at(ast.parse(source.read()))
    deferred = 0
    with use_db(session, WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            (spec,) = item.mutations
            module = str(spec.module_path)
            if module not in places:
                named = False
            else:
                function = where[module].get(spec.start_pos[0], "<module>")
                place = "{}:{}".format(*spec.start_pos)
                named = (function, "") in places[module] or (function, place) in places[module]
            if named != only:
                result = WorkResult(output=DEFERRED, worker_outcome=WorkerOutcome.SKIPPED)
                db.set_result(item.job_id, result)
                deferred += 1
    print(f"{deferred} mutants deferred")


if __name__ == "__main__":
    main(*sys.argv[1:])
