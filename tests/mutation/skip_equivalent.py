"""Mark as skipped the mutants that are equivalent by construction, before any test runs.

- an operator inside an annotation (`str | None` -> `str & None`): every module here has
  `from __future__ import annotations`, so annotations are never evaluated;
- `@abstractmethod` removed: it only decides whether an incomplete subclass can be built.

    python tests/mutation/skip_equivalent.py SESSION.sqlite
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult


def _annotation_spans(tree: ast.AST) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    spans = []
    for node in ast.walk(tree):
        found: list[ast.expr | None] = []
        if isinstance(node, ast.arg):
            found.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
        for ann in found:
            if ann is not None and ann.end_lineno is not None and ann.end_col_offset is not None:
                spans.append(((ann.lineno, ann.col_offset), (ann.end_lineno, ann.end_col_offset)))
    return spans


def _abstract_lines(tree: ast.AST) -> set[int]:
    return {
        dec.lineno
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for dec in node.decorator_list
        if isinstance(dec, ast.Name) and dec.id == "abstractmethod"
    }


def main(session: str) -> None:
    trees: dict[Path, ast.AST] = {}
    skipped = 0
    with use_db(session, WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            (spec,) = item.mutations
            tree = trees.setdefault(spec.module_path, ast.parse(spec.module_path.read_text()))
            why = ""
            if spec.operator_name.startswith("core/ReplaceBinaryOperator_"):
                start = (spec.start_pos[0], spec.start_pos[1])
                for low, high in _annotation_spans(tree):
                    if low <= start < high:
                        why = "equivalent: an annotation (never evaluated)"
            elif spec.operator_name == "core/RemoveDecorator" and (
                spec.start_pos[0] in _abstract_lines(tree)
            ):
                why = "equivalent: @abstractmethod removed"
            if why:
                db.set_result(
                    item.job_id, WorkResult(output=why, worker_outcome=WorkerOutcome.SKIPPED)
                )
                skipped += 1
    print(f"{skipped} mutants skipped as equivalent by construction")


if __name__ == "__main__":
    main(sys.argv[1])
