"""labels: uv's workspace discovery and the candidate index that names each lock file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import make_project
from uvsweep.labels import LabelIndex, build_index, project_root, python_install_dir
from uvsweep.model import Label, LabelKind
from uvsweep.naming import lock_name, path_digest


def test_nearest_pyproject_is_the_project(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project / "a" / "b").mkdir(parents=True)
    assert project_root(str(project / "a" / "b")) == str(project)


def test_no_pyproject_means_no_project(tmp_path: Path) -> None:
    assert project_root(str(tmp_path)) is None


def test_unmanaged_projects_have_no_temp_lock(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", extra="[tool.uv]\nmanaged = false\n")
    assert project_root(str(project)) is None


def test_a_project_inside_another_project_is_its_own_root(tmp_path: Path) -> None:
    outer = make_project(tmp_path / "outer", "outer")
    inner = make_project(outer / "examples" / "inner", "inner")
    assert project_root(str(inner)) == str(inner)


def test_a_virtual_workspace_root_is_its_own_root(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["libs/*"]\n')
    member = make_project(root / "libs" / "one", "one")
    assert project_root(str(root)) == str(root)
    assert project_root(str(member)) == str(root)


def test_paths_are_normalised_lexically_not_resolved(tmp_path: Path) -> None:
    project = make_project(tmp_path / "real")
    (tmp_path / "link").symlink_to(project)
    assert project_root(str(tmp_path / "link" / ".." / "link")) == str(tmp_path / "link")


def test_a_corrupt_pyproject_is_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\nname=")
    assert project_root(str(tmp_path)) is None


def test_index_labels_interpreters_by_executable_and_prefix() -> None:
    index = LabelIndex()
    index.add_interpreter("/usr/bin/python3")
    assert index.label_for(lock_name(path_digest("/usr/bin/python3"))) == Label(
        LabelKind.PYTHON, "/usr/bin/python3"
    )
    assert index.label_for("uv-b17927aca3d28934.lock") == Label(LabelKind.PYTHON, "/usr")


def test_setuptools_locks_are_labelled_as_builds_of_the_source_tree(tmp_path: Path) -> None:
    project = make_project(tmp_path / "src-tree")
    index = LabelIndex()
    index.add_project(str(project))
    canonical = os.path.realpath(project)
    name = lock_name(path_digest(canonical), setuptools=True)
    assert index.label_for(name) == Label(LabelKind.BUILD, canonical)
    # the name says build even when no candidate matches: its tree is gone (or unknown)
    assert index.label_for("uv-setuptools-0000000000000000.lock") == Label(LabelKind.BUILD, "")
    assert index.label_for("uv-0000000000000000.lock") is None
    assert index.label_for("not-a-lock") is None


def test_build_index_finds_path_interpreters_managed_pythons_and_project_dirs(
    tmp_path: Path,
) -> None:
    bin_dir = tmp_path / "opt" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3.12").touch()
    managed = tmp_path / "managed"
    (managed / "cpython-3.13.1-linux-x86_64-gnu" / "bin").mkdir(parents=True)
    (managed / "cpython-3.13.1-linux-x86_64-gnu" / "bin" / "python3.13").touch()
    code = tmp_path / "code"
    make_project(code / "app")
    (code / "tool.py").write_text("# /// script\n# dependencies = []\n# ///\nprint(1)\n")
    environ = {"PATH": str(bin_dir), "UV_PYTHON_INSTALL_DIR": str(managed)}
    index = build_index([str(code)], None, environ, "linux", cwd=str(tmp_path))
    expect = {
        str(bin_dir / "python3.12"): LabelKind.PYTHON,
        str(tmp_path / "opt"): LabelKind.PYTHON,  # the prefix: the key of uv <= 0.7.11
        str(managed / "cpython-3.13.1-linux-x86_64-gnu" / "bin" / "python3.13"): LabelKind.PYTHON,
        str(code / "app"): LabelKind.PROJECT,
        str(code / "tool.py"): LabelKind.SCRIPT,
        "/usr/local": LabelKind.PYTHON,
    }
    for key, kind in expect.items():
        label = index.label_for(lock_name(path_digest(key)))
        assert label is not None and label.kind is kind, key


def test_python_install_dir_follows_uvs_rules() -> None:
    assert python_install_dir({"UV_PYTHON_INSTALL_DIR": "/x"}, "linux") == "/x"
    assert python_install_dir({"XDG_DATA_HOME": "/d"}, "linux") == "/d/uv/python"
    assert python_install_dir({"APPDATA": "C:\\A"}, "win32").endswith(os.path.join("uv", "python"))


def test_realpath_with_parents_resolved_once_matches_the_os(tmp_path: Path) -> None:
    (tmp_path / "real" / "bin").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "bin" / "python3.11").touch()
    (tmp_path / "real" / "bin" / "python3").symlink_to("python3.11")
    (tmp_path / "abs").symlink_to(tmp_path / "link" / "bin" / "python3")
    (tmp_path / "file").touch()
    # links to links, up and down, through other links, and loops
    (tmp_path / "real" / "lib").mkdir()
    (tmp_path / "real" / "lib" / "py").touch()
    (tmp_path / "real" / "bin" / "up").symlink_to("../lib/py")
    (tmp_path / "real" / "bin" / "chain").symlink_to("python3")
    (tmp_path / "real" / "bin" / "via").symlink_to("../../link/lib/py")
    (tmp_path / "real" / "bin" / "tricky").symlink_to("sub/../python3")
    (tmp_path / "real" / "bin" / "sub").symlink_to(tmp_path / "real" / "lib")
    (tmp_path / "real" / "bin" / "loop1").symlink_to("loop2")
    (tmp_path / "real" / "bin" / "loop2").symlink_to("loop1")
    (tmp_path / "real" / "bin" / "broken").symlink_to("nowhere/x")
    (tmp_path / "real" / "bin" / "long").symlink_to("./././chain")
    index = LabelIndex()
    for path in [
        "link/bin/python3", "link/bin/python3.11", "abs", "missing/x", "link/bin/../bin/python3",
        "link/", "link/.", "link/..", "real/bin/nope", "file/x", "link/bin/python3",
        "link/bin/up", "link/bin/chain", "link/bin/via", "link/bin/tricky", "link/bin/loop1",
        "link/bin/broken", "link/bin/long", "real/bin/sub/py", "link/bin/sub/../bin/up",
    ]:  # fmt: skip
        full = f"{tmp_path}/{path}"
        assert index._real(full) == os.path.realpath(full), path
        assert index._real(full) == os.path.realpath(full), path  # remembered
    assert index._real("/") == "/"


def test_interpreters_of_a_dir_listed_once_are_named_in_each_spelling(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3").touch()
    (tmp_path / "bin" / "pip").touch()
    (tmp_path / "alias").symlink_to("bin")
    index = LabelIndex()
    assert index.interpreters_in(str(tmp_path / "bin")) == [str(tmp_path / "bin" / "python3")]
    assert index.interpreters_in(str(tmp_path / "alias")) == [str(tmp_path / "alias" / "python3")]
    assert index.interpreters_in(str(tmp_path / "missing")) == []


def test_a_changed_pyproject_is_read_again(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "a"\n[tool.uv]\nmanaged = false\n')
    assert project_root(str(tmp_path)) is None
    assert project_root(str(tmp_path)) is None  # parsed once, and still right
    before = pyproject.stat().st_mtime_ns
    pyproject.write_text('[project]\nname = "a"\n[tool.uv]\nmanaged = true\n\n')
    os.utime(pyproject, ns=(before + 10**9, before + 10**9))
    assert project_root(str(tmp_path)) == str(tmp_path)


PYPROJECTS = {
    "plain": '[project]\nname = "a"\ndependencies = ["x[extra]>=1"]\n',
    "plain, commented header": '# top\n[project] # the table\nname = "a"\n[tool.ruff]\n',
    "not managed": '[project]\nname = "a"\n[tool.uv]\nmanaged = false\n',
    "workspace": '[project]\nname = "a"\n[tool.uv.workspace]\nmembers = ["p/*"]\n',
    "header in a string": 'readme = """\n[project]\n"""\n',
    "header in a literal string": "readme = '''\n[project]\n'''\n",
    "sub-table only": '[project.urls]\nhome = "x"\n',
    "inline": 'project = { name = "a" }\n',
    "array of tables": '[[project]]\nname = "a"\n',
    "no project": "[tool.ruff]\nline-length = 99\n",
    "indented header": '  [project]\nname = "a"\n',
}


def test_a_plain_pyproject_is_read_without_a_parser_with_the_same_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from uvsweep import labels

    for name, text in PYPROJECTS.items():
        where = tmp_path / name.replace(" ", "-").replace(",", "")
        (where / "member").mkdir(parents=True)
        (where / "pyproject.toml").write_text(text)
        (where / "member" / "pyproject.toml").write_text('[project]\nname = "m"\n')
        found = [project_root(str(where)), project_root(str(where / "member"))]
        labels._PYPROJECTS.clear()
        with monkeypatch.context() as patch:
            patch.setattr(labels, "_plain_project", lambda _raw: False)  # the parser, always
            assert [project_root(str(where)), project_root(str(where / "member"))] == found, name
        labels._PYPROJECTS.clear()
        assert labels._plain_project(text.encode()) is name.startswith("plain"), name


def test_a_scan_inside_a_plain_project_imports_no_toml_parser(tmp_path: Path) -> None:
    import subprocess
    import sys

    make_project(tmp_path / "proj")
    text = (tmp_path / "proj" / "pyproject.toml").read_text()
    assert "[project]" in text and "workspace" not in text
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / lock_name(path_digest(str(tmp_path / "proj")))).touch()
    code = (
        "import sys; from uvsweep import scanner;"
        "snap = scanner.scan([sys.argv[1]]);"
        "print('LABEL', snap.files[0].label.path if snap.files[0].label else None);"
        "print('TOML', 'tomllib' in sys.modules or 'tomli' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "locks")],
        capture_output=True, text=True, check=True, cwd=tmp_path / "proj",
        env={**os.environ, "UVSWEEP_CONFIG": str(tmp_path / "none.toml")},
    )  # fmt: skip
    assert done.stdout.splitlines()[-2:] == [f"LABEL {tmp_path / 'proj'}", "TOML False"]


def test_a_kept_labeller_builds_its_index_once_and_again_only_as_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from uvsweep import labels, scanner
    from uvsweep.processes import ProcessTable

    (tmp_path / lock_name(path_digest("/nowhere"))).touch()
    files = scanner.scan([str(tmp_path)], label=False).files
    built: list[int] = []
    monkeypatch.setattr(labels, "build_index", lambda *_a: built.append(1) or LabelIndex())
    table = ProcessTable()
    labeller = scanner.Labeller(retry=5.0)
    assert labeller.label([], table) == [] and built == []  # nothing to label: no index
    assert [f.label for f in labeller.label(files, table)] == [None] and len(built) == 1
    labeller.label(files, table)
    assert len(built) == 1, "unlabelled, but built a moment ago"
    labeller._built_at -= 10
    labeller.label(files, table, retry=False)
    assert len(built) == 1, "a leading probe never builds it again"
    labeller.label(files, table)
    assert len(built) == 2, "unlabelled for longer than `retry`: built again"
    labeller.forget()
    labeller.label(files, table)
    assert len(built) == 3
    assert scanner.Labeller().label(files, table) and len(built) == 4  # a scan's: a new index
