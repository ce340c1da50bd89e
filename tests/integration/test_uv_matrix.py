"""The fidelity matrix: every lock file real uv releases make is a `lockname` prediction and gets
the expected label from `scan`.

Each release comes from the package registry (`pip download`, cached between runs; see
tests/uv_releases.py) and runs offline (`UV_OFFLINE=1`, local wheels through `--find-links`),
with `UV_PYTHON_DOWNLOADS=never`, and each operation gets a private TMPDIR of its own, so a file
belongs to exactly one operation. Releases run three at a time; the assertions are per release.
The README's "Every lock, per release" table is this matrix's expected outcome.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import base_python, make_wheel, need
from tests.uv_releases import uv_release, wheel
from uvsweep.naming import lock_name, path_digest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: 0.5.31: first with script locks. 0.7.11/0.7.12: sys.prefix -> sys.executable. 0.7.19: runs
#: unlocked when it cannot open a lock. 0.9.30: last 0.9. 0.13.0: last with the lexical project
#: path. 0.13.9: the newest release when this was written (real project path, from 0.13.1).
RELEASES = ("0.5.31", "0.7.11", "0.7.12", "0.7.19", "0.9.30", "0.13.0", "0.13.9")
SETUPTOOLS = "setuptools==80.9.0"
SETUPTOOLS_PROJECT = (
    '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    '[project]\nname = "{name}"\nversion = "1.0"\nrequires-python = ">=3.8"\n'
)
SCRIPT = "# /// script\n# requires-python = '>=3.8'\n# dependencies = []\n# ///\nprint('ran')\n"


def _project(path: Path, text: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "pyproject.toml").write_text(text)
    return path


def _plain_project(path: Path, name: str) -> Path:
    return _project(
        path,
        f'[project]\nname = "{name}"\nversion = "0"\nrequires-python = ">=3.8"\n'
        "dependencies = []\n",
    )


def _uvsweep(*args: str, env: dict[str, str], cwd: Path) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        [sys.executable, "-m", "uvsweep", *args], env=env, cwd=cwd, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 4), done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


class Op:
    """One operation of one release: what uv did, what appeared, and what was predicted."""

    def __init__(self, name: str, lockdir: Path) -> None:
        self.name = name
        self.lockdir = lockdir
        self.returncode = 0
        self.output = ""
        self.predicted: dict[str, tuple[str, str | None]] = {}  # lock name -> label (kind, path)
        self.no_lock = ""  # lockname's "uv takes no lock for this" reason, if it said so

    def appeared(self) -> set[str]:
        return {p.name for p in self.lockdir.iterdir() if p.name.startswith("uv-")}


class Release:
    """A uv release run through every operation in its own root."""

    def __init__(self, version: str, uv: Path, root: Path, wheels: Path) -> None:
        self.version = version
        self.uv = uv
        self.root = root
        self.ops: dict[str, Op] = {}
        self.labels: dict[str, dict | None] = {}  # type: ignore[type-arg]
        python = base_python()
        self.python = python
        self.fake_pyenv = root / "pyenv"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("UV_", "VIRTUAL_ENV", "PYENV", "CONDA", "UVSWEEP_"))
        }
        self.env.update(
            UV_OFFLINE="1", UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1",
            UV_CACHE_DIR=str(root / "cache"), UV_FIND_LINKS=str(wheels), UV_PYTHON=python,
            XDG_CONFIG_HOME=str(root / "config"), PATH=f"{uv.parent}{os.pathsep}/usr/bin:/bin",
        )  # fmt: skip

    # ---- running ------------------------------------------------------------------------------

    def op(self, name: str) -> Op:
        lockdir = self.root / "tmp" / name
        lockdir.mkdir(parents=True)
        self.ops[name] = Op(name, lockdir)
        return self.ops[name]

    def uv_run(
        self, op: Op, args: list[str], cwd: Path, env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        done = subprocess.run(
            [*prefix, str(self.uv), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
            env={**(env or self.env), "TMPDIR": str(op.lockdir)}, check=False,
        )  # fmt: skip
        op.returncode = op.returncode or done.returncode
        op.output += done.stdout + done.stderr

    def predict(
        self, op: Op, args: list[str], label: tuple[str, str | None] | None = None,
        env: dict[str, str] | None = None, cwd: Path | None = None,
    ) -> None:  # fmt: skip
        """Ask `lockname --json` and keep the names this release uses, with the label due."""
        doc = _uvsweep("lockname", "--json", "--name-only", *args,
                       env=env or self.env, cwd=cwd or self.root)  # fmt: skip
        op.no_lock = doc["no_lock"] or op.no_lock
        for lock in doc["locks"]:
            first, last = lock["first"], lock["last"]
            if (first is None or _v(first) <= _v(self.version)) and (
                last is None or _v(self.version) <= _v(last)
            ):
                op.predicted[lock["name"]] = label or (lock["kind"], lock["key"])

    def run_all(self) -> None:
        root = self.root
        projects = root / "code"

        op = self.op("sync")
        proj = _plain_project(projects / "proj", "proj")
        self.uv_run(op, ["sync"], proj)
        self.predict(op, ["--project", str(proj)], ("project", str(proj)))

        op = self.op("sync-symlink")
        (root / "real" / "p2").mkdir(parents=True)
        _plain_project(root / "real" / "p2", "p2")
        (projects / "link").symlink_to(root / "real")
        via_link = projects / "link" / "p2"
        self.uv_run(op, ["sync", "--project", str(via_link)], root)
        self.predict(op, ["--project", str(via_link)], ("project", str(via_link)))

        # from inside the symlinked dir: uv starts from getcwd(), which is the physical path
        op = self.op("sync-symlink-cwd")
        self.uv_run(op, ["sync"], via_link)
        self.predict(op, ["--project", "."], ("project", str(via_link)), cwd=via_link)

        scripts = root / "scripts"
        scripts.mkdir()
        op = self.op("script")
        (scripts / "hello.py").write_text(SCRIPT)
        self.uv_run(op, ["run", "scripts/hello.py"], root)
        self.predict(op, ["--script", "scripts/hello.py"], ("script", str(scripts / "hello.py")))

        op = self.op("script-shebang")
        tool = scripts / "tool"
        tool.write_text("#!/usr/bin/env -S uv run --script\n" + SCRIPT)
        tool.chmod(0o755)
        done = subprocess.run(
            [str(tool)], cwd=scripts, capture_output=True, text=True, timeout=300,
            env={**self.env, "TMPDIR": str(op.lockdir)}, check=False,
        )  # fmt: skip
        op.returncode, op.output = done.returncode, done.stdout + done.stderr
        self.predict(op, ["--script", str(tool)], ("script", str(tool)))

        op = self.op("script-plain")
        (scripts / "plain.py").write_text("print('plain')\n")
        self.uv_run(op, ["run", "plain.py"], scripts)
        self.predict(op, ["--script", str(scripts / "plain.py")])

        op = self.op("python")
        self.uv_run(op, ["pip", "install", "--dry-run", "--break-system-packages", "--python",
                         self.python, "tinydep"], root)  # fmt: skip
        self.predict(op, ["--python", self.python])

        op = self.op("system-shim")
        shim_env = self._fake_pyenv()
        self.uv_run(op, ["pip", "install", "--dry-run", "--break-system-packages", "--system",
                         "tinydep"], root, env=shim_env)  # fmt: skip
        self.predict(op, ["--system"], env=shim_env)

        op = self.op("build")
        stp = _project(projects / "stp", SETUPTOOLS_PROJECT.format(name="stp"))
        (stp / "stp.py").write_text("")
        trace = root / "build.strace"
        self.uv_run(
            op,
            ["build"],
            stp,
            prefix=("strace", "-f", "-qq", "-e", "trace=mkdir,mkdirat", "-o", str(trace)),
        )
        self.predict(op, ["--build", str(stp)], ("build", os.path.realpath(stp)))
        # `uv build` makes the wheel from the sdist, unpacked in a throwaway `.tmpXXXXXX` dir of
        # the cache: its lock's tree is gone at once, so the label says so (path null)
        made = re.findall(r'mkdir(?:at)?\([^"]*"([^"]*/sdists-v\d+/\.tmp\w+)"', trace.read_text())
        for tmp in made if _v(self.version) >= _v("0.7.16") else ():
            tree = os.path.join(os.path.realpath(tmp), "stp-1.0")
            op.predicted[lock_name(path_digest(tree), setuptools=True)] = ("build", None)

        # `build` above already shows releases before 0.7.16 take no setuptools lock; installing
        # the sdist there would build it again to show the same (CPU the matrix cannot spare)
        if _v(self.version) >= _v("0.7.16"):
            self._sdist_install(stp / "dist" / "stp-1.0.tar.gz")
        self._workspace(projects)
        self._scan()

    def _sdist_install(self, sdist: Path) -> None:
        op = self.op("sdist-install")
        self.uv_run(op, ["venv", str(self.root / "venv")], self.root)
        venv_python = self.root / "venv" / "bin" / "python"
        self.uv_run(op, ["pip", "install", "--python", str(venv_python), str(sdist)], self.root)
        for src in sorted((self.root / "cache").glob("sdists-v*/path/*/*/src")):
            self.predict(op, ["--build", str(src)], ("build", os.path.realpath(src)))

    def _workspace(self, projects: Path) -> None:
        op = self.op("workspace")
        ws = _project(
            projects / "ws",
            '[project]\nname = "ws"\nversion = "0"\nrequires-python = ">=3.8"\n'
            'dependencies = ["m1"]\n[tool.uv.sources]\nm1 = { workspace = true }\n'
            '[tool.uv.workspace]\nmembers = ["packages/*"]\n',
        )
        member = _project(ws / "packages" / "m1", SETUPTOOLS_PROJECT.format(name="m1"))
        (member / "m1.py").write_text("")
        self.uv_run(op, ["sync"], member)
        self.predict(op, ["--project", str(member)], ("project", str(ws)))
        self.predict(op, ["--build", str(member)], ("build", os.path.realpath(member)))

    def _fake_pyenv(self) -> dict[str, str]:
        """A pyenv root whose shims exec this machine's interpreter, and PATH with only them."""
        root = self.fake_pyenv
        (root / "shims").mkdir(parents=True)
        (root / "versions").mkdir()
        version = root / "versions" / "3.99.0"
        version.symlink_to(Path(self.python).parent.parent)  # the interpreter's prefix
        for shim in ("python", "python3"):
            path = root / "shims" / shim
            path.write_text(
                f'#!/bin/sh\nexec "{version}/bin/{os.path.basename(self.python)}" "$@"\n'
            )
            path.chmod(0o755)
        env = {key: value for key, value in self.env.items() if key != "UV_PYTHON"}
        env.update(PYENV_ROOT=str(root), PATH=f"{root / 'shims'}{os.pathsep}{self.env['PATH']}")
        return env

    def _scan(self) -> None:
        settings = self.root / "settings.toml"
        dirs = [self.root / "code" / name for name in ("proj", "link/p2", "stp", "ws")]
        dirs.append(self.root / "scripts")
        settings.write_text("project_dirs = [" + ", ".join(f'"{d}"' for d in dirs) + "]\n")
        env = {**self.env, "UVSWEEP_CONFIG": str(settings), "PYENV_ROOT": str(self.fake_pyenv),
               "PATH": f"{self.fake_pyenv / 'shims'}{os.pathsep}"
                       f"{os.path.dirname(self.python)}{os.pathsep}{self.env['PATH']}"}  # fmt: skip
        args = [arg for op in self.ops.values() for arg in ("--dir", str(op.lockdir))]
        doc = _uvsweep("scan", "--json", *args, env=env, cwd=self.root)
        self.labels = {os.path.basename(item["path"]): item["label"] for item in doc["files"]}


def _v(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Release]:
    need(shutil.which("strace") is not None, "strace is not installed (Debian: strace)")
    python = base_python()
    need(
        subprocess.run([python, "-m", "pip", "--version"], capture_output=True,
                       check=False).returncode == 0,
        f"{python} has no pip (it downloads the uv releases)",
    )  # fmt: skip
    # pytest's own tmp dirs: the last few runs' trees stay for a look, older ones go
    wheels = tmp_path_factory.mktemp("uv-matrix")
    shutil.copy(wheel(python, SETUPTOOLS), wheels)
    make_wheel(wheels)
    binaries = {version: uv_release(python, version) for version in RELEASES}
    releases = {
        version: Release(version, binaries[version], wheels / version, wheels)
        for version in RELEASES
    }
    for release in releases.values():
        release.root.mkdir()
    with ThreadPoolExecutor(max_workers=3) as pool:
        for future in [pool.submit(r.run_all) for r in releases.values()]:
            future.result()
    return releases


@pytest.mark.parametrize("version", RELEASES)
def test_every_lock_is_predicted_and_labelled(matrix: dict[str, Release], version: str) -> None:
    release = matrix[version]
    for op in release.ops.values():
        assert op.returncode == 0, f"{version} {op.name}: {op.output[-2000:]}"
        assert op.appeared() == set(op.predicted), f"{version} {op.name}"
        for name, (kind, path) in op.predicted.items():
            expected = {"kind": kind, "path": path}
            assert release.labels[name] == expected, f"{version} {op.name} {name}"


@pytest.mark.parametrize("version", RELEASES)
def test_uv_takes_no_lock_where_lockname_says_so(matrix: dict[str, Release], version: str) -> None:
    plain = matrix[version].ops["script-plain"]
    assert "no `# /// script` block" in plain.no_lock
    assert plain.appeared() == set()
