"""The keys each uv release hashes, the candidates behind labels, and the TMPDIR warning."""

from __future__ import annotations

import ntpath
import os
from pathlib import Path

import pytest

from tests.conftest import make_project
from uvsweep import report
from uvsweep.labels import (
    LabelIndex,
    NoLockError,
    build_index,
    build_keys,
    cached_source_trees,
    interpreter_keys,
    project_keys,
    script_keys,
    system_interpreter,
    workspace_members,
)
from uvsweep.locations import default_dirs, tmpdir_warning
from uvsweep.model import Label, LabelKind, LockFile, LockState, ProcessInfo, Snapshot
from uvsweep.naming import (
    PathStyle,
    lock_name,
    path_digest,
    str_digest,
    windows_absolute,
    windows_verbatim,
)

W = PathStyle.WINDOWS
SCRIPT = "# /// script\n# dependencies = []\n# ///\nprint(1)\n"


def name(key: str, style: PathStyle = PathStyle.POSIX, *, build: bool = False) -> str:
    return lock_name(path_digest(key, style), setuptools=build)


# ---- projects -----------------------------------------------------------------------------------


def test_a_project_through_a_symlink_has_a_lexical_and_a_real_key(tmp_path: Path) -> None:
    real = make_project(tmp_path / "real" / "app")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    lexical, resolved = project_keys(str(tmp_path / "link" / "app"))
    assert lexical.key == str(tmp_path / "link" / "app")
    assert (lexical.first(), lexical.last()) == ("0.5.29", "0.13.0")
    assert resolved.key == str(real)
    assert (resolved.first(), resolved.last()) == ("0.13.1", None)
    assert lexical.used_by("0.13.0") and not lexical.used_by("0.13.1")
    assert resolved.used_by("0.13.1") and not resolved.used_by("0.13.0")
    assert resolved.releases().startswith("uv 0.13.1 and later: ")


def test_a_project_without_symlinks_has_one_name_for_every_release(tmp_path: Path) -> None:
    project = make_project(tmp_path / "app")
    (key,) = project_keys(str(project))
    assert key.name() == name(str(project))
    assert (key.first(), key.last()) == ("0.5.29", None)
    assert key.releases().startswith("uv 0.5.29 and later: ")


def test_no_project_means_no_lock(tmp_path: Path) -> None:
    with pytest.raises(NoLockError, match="no managed project"):
        project_keys(str(tmp_path))


def test_project_dirs_through_a_symlink_label_both_forms(tmp_path: Path) -> None:
    real = make_project(tmp_path / "real" / "app")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    index = build_index([str(tmp_path / "link" / "app")], None, {"PATH": ""}, "linux",
                        cwd=str(tmp_path))  # fmt: skip
    shown = str(tmp_path / "link" / "app")
    assert index.label_for(name(shown)) == Label(LabelKind.PROJECT, shown)
    assert index.label_for(name(str(real))) == Label(LabelKind.PROJECT, shown)


def test_workspace_members_label_their_setuptools_locks(tmp_path: Path) -> None:
    root = make_project(tmp_path / "ws", "ws", '[tool.uv.workspace]\nmembers = ["libs/*"]\n'
                        'exclude = ["libs/skip"]\n')  # fmt: skip
    one = make_project(root / "libs" / "one", "one")
    make_project(root / "libs" / "skip", "skip")
    (root / "libs" / "notes").mkdir()
    assert workspace_members(str(root)) == [str(one)]
    index = LabelIndex()
    index.add_project(str(root))
    assert index.label_for(name(str(one), build=True)) == Label(LabelKind.BUILD, str(one))
    assert index.label_for(name(str(root / "libs" / "skip"), build=True)) == Label(
        LabelKind.BUILD, ""
    )


# ---- scripts ------------------------------------------------------------------------------------


def test_a_script_without_a_metadata_block_takes_no_lock(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("print(1)\n# /// script\n")  # an unclosed block is none
    with pytest.raises(NoLockError, match="no `# /// script` block"):
        script_keys("plain.py", str(tmp_path))


def test_script_keys_keep_parent_components_on_unix(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "s.py").write_text(SCRIPT)
    (key,) = script_keys("sub/../s.py", str(tmp_path), "linux")
    assert key.key == os.path.join(str(tmp_path), "sub/../s.py")
    assert key.name() != name(str(tmp_path / "s.py"))  # `..` is hashed, as uv does
    assert (key.first(), key.last()) == ("0.5.31", None)


def test_extensionless_scripts_with_a_block_are_scripts(tmp_path: Path) -> None:
    (tmp_path / "tool").write_text("#!/usr/bin/env -S uv run --script\n" + SCRIPT)
    (key,) = script_keys("tool", str(tmp_path))
    assert key.key == str(tmp_path / "tool")


def test_url_scripts_hash_the_url_as_a_string_and_stdin_cannot_be_named(tmp_path: Path) -> None:
    (key,) = script_keys("https://example.com/s.py", str(tmp_path))
    assert key.name() == lock_name(str_digest("https://example.com/s.py"))
    with pytest.raises(NoLockError, match="stdin"):
        script_keys("-", str(tmp_path))


def test_running_scripts_are_labelled_by_shebang_flag_url_and_path(tmp_path: Path) -> None:
    (tmp_path / "tool").write_text("#!/usr/bin/env -S uv run --script\n" + SCRIPT)
    (tmp_path / "plain.py").write_text("print(1)\n")
    (tmp_path / "meta.py").write_text(SCRIPT)

    class Table:
        def uv_processes(self) -> list[ProcessInfo]:
            return [
                ProcessInfo(1, "uv", 0, "me", ("uv", "run", "--script", "./tool"), str(tmp_path)),
                ProcessInfo(2, "uv", 0, "me", ("uv", "run", "https://x.org/s.py"), str(tmp_path)),
                ProcessInfo(3, "uv", 0, "me", ("uv", "run", "plain.py"), str(tmp_path)),
                ProcessInfo(4, "uv", 0, "me", ("uv", "run", "-q", "meta.py"), str(tmp_path)),
            ]

    index = build_index((), Table(), {"PATH": ""}, "linux", cwd=str(tmp_path))  # type: ignore[arg-type]
    assert index.label_for(name(os.path.join(str(tmp_path), "./tool"))) == Label(
        LabelKind.SCRIPT, os.path.join(str(tmp_path), "./tool")
    )
    assert index.label_for(lock_name(str_digest("https://x.org/s.py"))) == Label(
        LabelKind.SCRIPT, "https://x.org/s.py"
    )
    assert index.label_for(name(str(tmp_path / "plain.py"))) is None  # uv locks no script here
    assert index.label_for(name(str(tmp_path / "meta.py"))) == Label(
        LabelKind.SCRIPT, str(tmp_path / "meta.py")
    )


# ---- interpreters -------------------------------------------------------------------------------


def test_interpreter_keys_are_executable_then_prefix_by_release() -> None:
    keys = interpreter_keys("/opt/py/bin/python3", run=lambda exe: [
        "/opt/py/bin/python3", "/opt/py", "/opt/py"])  # fmt: skip
    assert [k.key for k in keys] == ["/opt/py/bin/python3", "/opt/py"]
    executable, prefix = keys
    assert executable.used_by("0.7.12") and not executable.used_by("0.7.11")
    assert prefix.used_by("0.4.30") and prefix.used_by("0.7.11") and not prefix.used_by("0.7.12")


def test_a_virtual_environment_takes_no_temp_lock() -> None:
    with pytest.raises(NoLockError, match="virtual environment"):
        interpreter_keys("/v/bin/python", run=lambda exe: ["/v/bin/python", "/v", "/usr"])


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_system_finds_python_before_python3_as_uv_does(tmp_path: Path) -> None:
    _exe(tmp_path / "a" / "python3")
    _exe(tmp_path / "a" / "python")
    _exe(tmp_path / "b" / "python")
    env = {"PATH": os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])}
    assert system_interpreter(env, "linux") == str(tmp_path / "a" / "python")
    (tmp_path / "a" / "python").unlink()
    assert system_interpreter(env, "linux") == str(tmp_path / "a" / "python3")
    assert system_interpreter({"PATH": ""}, "linux") is None


@pytest.mark.parametrize(
    ("variable", "layout"),
    [
        ("PYENV_ROOT", "versions/3.11.7"),
        ("ASDF_DATA_DIR", "installs/python/3.12.1"),
        ("MISE_DATA_DIR", "installs/python/3.13.0"),
    ],
)
def test_interpreters_behind_version_manager_shims_are_candidates(
    tmp_path: Path, variable: str, layout: str
) -> None:
    home = tmp_path / "mgr" / layout
    exe = _exe(home / "bin" / "python3.11")
    _exe(tmp_path / "mgr" / "shims" / "python")  # the shim itself is not the interpreter
    env = {"PATH": str(tmp_path / "mgr" / "shims"), "HOME": str(tmp_path), variable: str(
        tmp_path / "mgr")}  # fmt: skip
    index = build_index((), None, env, "linux", cwd=str(tmp_path))
    assert index.label_for(name(str(exe))) == Label(LabelKind.PYTHON, str(exe))  # >= 0.7.12
    assert index.label_for(name(str(home))) == Label(LabelKind.PYTHON, str(home))  # <= 0.7.11


def test_default_manager_dirs_and_conda_envs_are_candidates(tmp_path: Path) -> None:
    pyenv = _exe(tmp_path / ".pyenv" / "versions" / "3.10.13" / "bin" / "python")
    mise = _exe(tmp_path / "data" / "mise" / "installs" / "python" / "3.12" / "bin" / "python3")
    conda = _exe(tmp_path / "miniconda3" / "envs" / "ml" / "bin" / "python")
    env = {"PATH": "", "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    index = build_index((), None, env, "linux", cwd=str(tmp_path))
    for exe in (pyenv, mise, conda):
        assert index.label_for(name(str(exe))) == Label(LabelKind.PYTHON, str(exe))


def test_windows_registry_and_store_pythons_are_candidates(tmp_path: Path) -> None:
    store = tmp_path / "Microsoft" / "WindowsApps" / "PythonSoftwareFoundation.Python.3.12_qbz5"
    _exe(store / "python.exe")
    env = {"PATH": "", "HOME": str(tmp_path), "LOCALAPPDATA": str(tmp_path),
           "APPDATA": str(tmp_path)}  # fmt: skip
    index = build_index((), None, env, "win32", cwd=str(tmp_path),
                        windows_registry=lambda: ["C:\\Py312\\python.exe"])  # fmt: skip
    # the executable (uv >= 0.7.12) and its dir, the prefix on Windows (older uv)
    assert index.label_for(name("C:\\Py312\\python.exe", W)) == Label(
        LabelKind.PYTHON, "C:\\Py312\\python.exe"
    )
    assert index.label_for(name("C:\\Py312", W)) == Label(LabelKind.PYTHON, "C:\\Py312")
    exe = ntpath.join(str(store), "python.exe")  # a Windows path, joined with `\\`
    assert index.label_for(name(exe, W)) == Label(LabelKind.PYTHON, exe)


# ---- setuptools trees ---------------------------------------------------------------------------


def test_build_keys_are_canonical(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (key,) = build_keys(str(tmp_path / "link"), "linux")
    assert key.name() == name(str(tmp_path / "real"), build=True)
    assert (key.first(), key.last()) == ("0.7.16", None)


def test_unpacked_sdists_in_uvs_cache_are_build_candidates(tmp_path: Path) -> None:
    src = tmp_path / "cache" / "sdists-v11" / "path" / "7bea4abb5e89daba" / "bWNnQHaa" / "src"
    src.mkdir(parents=True)
    (src / "pkg" / "src").mkdir(parents=True)  # a package's own src dir is not walked into
    assert list(cached_source_trees(str(tmp_path / "cache"))) == [str(src)]
    index = build_index((), None, {"PATH": "", "UV_CACHE_DIR": str(tmp_path / "cache")}, "linux",
                        cwd=str(tmp_path))  # fmt: skip
    assert index.label_for(name(str(src), build=True)) == Label(LabelKind.BUILD, str(src))


def test_an_unmatched_setuptools_lock_is_a_build_whose_tree_is_gone() -> None:
    item = LockFile("/tmp/uv-setuptools-0123456789abcdef.lock", "uv-setuptools-0123456789abcdef"
                    ".lock", LockState.ORPHANED, 0.0, 0, 0, "me", reason="nobody")  # fmt: skip
    item = item.with_label(LabelIndex().label_for(item.name))
    assert report.file_json(item, 0.0)["label"] == {"kind": "build", "path": None}
    text = report.snapshot_text(Snapshot(("/tmp",), (item,)), 0.0)
    assert "build (source tree gone)" in text


# ---- Windows path rules, from Rust std's behaviour ----------------------------------------------


def test_canonicalize_on_windows_gives_verbatim_paths() -> None:
    assert windows_verbatim("C:\\src\\app") == "\\\\?\\C:\\src\\app"
    assert windows_verbatim("\\\\srv\\share\\app") == "\\\\?\\UNC\\srv\\share\\app"
    assert windows_verbatim("\\\\?\\C:\\x") == "\\\\?\\C:\\x"
    # and the verbatim key is a different lock from the plain one
    assert name("\\\\?\\C:\\src\\app", W) != name("C:\\src\\app", W)


def test_windows_build_labels_use_the_verbatim_key() -> None:
    index = LabelIndex(W)
    index.add_tree("C:\\src\\app")
    verbatim = name("\\\\?\\C:\\src\\app", W, build=True)
    assert index.label_for(verbatim) == Label(LabelKind.BUILD, "C:\\src\\app")


def test_absolute_on_windows_folds_parent_components() -> None:
    assert windows_absolute("sub\\..\\s.py", "C:\\work") == "C:\\work\\s.py"
    assert windows_absolute("a/./b.py", "C:\\work") == "C:\\work\\a\\b.py"
    assert windows_absolute("\\\\?\\C:\\a\\..\\b", "C:\\work") == "\\\\?\\C:\\a\\..\\b"


def test_windows_script_keys_fold_parent_components(tmp_path: Path) -> None:
    (tmp_path / "s.py").write_text(SCRIPT)
    # the script must exist here, so the cwd is this machine's; the key follows Windows rules
    (key,) = script_keys("s.py", str(tmp_path), "win32")
    assert key.key == windows_absolute("s.py", str(tmp_path))


# ---- TMPDIR -------------------------------------------------------------------------------------


def test_an_empty_or_relative_tmpdir_is_warned_about() -> None:
    assert tmpdir_warning("linux", {}) is None
    assert tmpdir_warning("linux", {"TMPDIR": "/scratch"}) is None
    empty = tmpdir_warning("linux", {"TMPDIR": ""})
    assert empty is not None and "empty" in empty and "working dir" in empty
    relative = tmpdir_warning("darwin", {"TMPDIR": "tmp"})
    assert relative is not None and "relative" in relative
    assert tmpdir_warning("win32", {"TMPDIR": ""}) is None  # Windows asks GetTempPath2W


def test_macos_scans_the_per_user_confstr_dir_even_with_tmpdir_set() -> None:
    dirs = default_dirs(platform="darwin", environ={"TMPDIR": "/custom"},
                        darwin_confstr=lambda: "/var/folders/xy/T/")  # fmt: skip
    assert dirs[:3] == ["/custom", "/var/folders/xy/T", "/tmp"]


def test_a_missing_script_is_an_error_not_a_lockless_script(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no script"):
        script_keys("gone.py", str(tmp_path))


def test_installs_beside_a_shim_dir_on_path_are_candidates_wherever_it_is(tmp_path: Path) -> None:
    exe = _exe(tmp_path / "tools" / "pyenv" / "versions" / "3.9.18" / "bin" / "python3.9")
    _exe(tmp_path / "tools" / "pyenv" / "shims" / "python")
    env = {"PATH": str(tmp_path / "tools" / "pyenv" / "shims"), "HOME": str(tmp_path / "home")}
    index = build_index((), None, env, "linux", cwd=str(tmp_path))
    assert index.label_for(name(str(exe))) == Label(LabelKind.PYTHON, str(exe))
