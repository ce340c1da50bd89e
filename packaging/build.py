"""Build the uvsweep bundle for the OS this runs on:
`uv run --group packaging python packaging/build.py` (PyInstaller is in that dependency group;
run without it, the script asks uv for the group itself).

- Linux: `dist/uvsweep/uvsweep` plus `dist/uvsweep-<version>-linux-<arch>.tar.gz`, with the
  .desktop file, the hicolor icons and the man page (packaging/manpage.py).
- macOS: `dist/uvsweep.app`.
- Windows: `dist/uvsweep/uvsweep.exe`, then the Inno Setup installer if `iscc` is on PATH.

`--record` also writes the Linux bundle's size to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "app"))

from uvsweep import __version__  # noqa: E402


def record_size(bundle: Path, tarball: Path) -> None:
    """Write the bundle's size to benchmarks/RESULTS.md (goal: under 80 MB without GTK)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import record  # noqa: PLC0415

    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    verdict = "met" if size < 80e6 else "NOT met"
    record(
        "Bundle",
        f"""
`uv run --group packaging python packaging/build.py` on Linux ({platform.machine()}): the onedir
bundle `dist/uvsweep` is **{size / 1e6:.1f} MB** (goal < 80 MB without GTK: {verdict}); the
tarball is {tarball.stat().st_size / 1e6:.1f} MB.
""",
    )


def ask_for_the_group() -> int | None:
    """PyInstaller lives in the `packaging` dependency group, outside the default environment:
    without it, run this script again through `uv run --group packaging` (once)."""
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("PyInstaller") is not None:
        return None
    uv = shutil.which("uv")
    if uv is None or os.environ.get("UVSWEEP_BUILD_REEXEC") == "1":
        print("PyInstaller is missing: run `uv run --group packaging python packaging/build.py`",
              file=sys.stderr)  # fmt: skip
        return 1
    print("PyInstaller is in the `packaging` group: running again with `uv run --group packaging`")
    command = [uv, "run", "--group", "packaging", "python", str(Path(__file__).resolve()),
               *sys.argv[1:]]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, check=False,
                          env={**os.environ, "UVSWEEP_BUILD_REEXEC": "1"}).returncode  # fmt: skip


def main() -> int:
    again = ask_for_the_group()
    if again is not None:
        return again
    dist, work = ROOT / "dist", ROOT / "build"
    subprocess.run([sys.executable, str(ROOT / "assets" / "render.py")], check=True)
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--distpath", str(dist),
         "--workpath", str(work), str(ROOT / "packaging" / "uvsweep.spec")],
        check=True,
    )  # fmt: skip
    if sys.platform.startswith("linux"):
        bundle = dist / "uvsweep"
        share = bundle / "share"
        shutil.copytree(
            ROOT / "assets" / "hicolor", share / "icons" / "hicolor", dirs_exist_ok=True
        )
        (share / "applications").mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "packaging" / "linux" / "uvsweep.desktop", share / "applications")
        # uvsweep(1), generated from the parser (`man -l share/man/man1/uvsweep.1`)
        subprocess.run([sys.executable, str(ROOT / "packaging" / "manpage.py"),
                        str(share / "man" / "man1" / "uvsweep.1")], check=True)  # fmt: skip
        tarball = dist / f"uvsweep-{__version__}-linux-{platform.machine()}.tar.gz"
        with tarfile.open(tarball, "w:gz") as archive:
            archive.add(bundle, arcname=f"uvsweep-{__version__}")
        print(f"built {bundle / 'uvsweep'} and {tarball}")
        if "--record" in sys.argv[1:]:
            record_size(bundle, tarball)
    elif sys.platform == "win32":  # pragma: no cover - Windows
        iscc = shutil.which("iscc")
        if iscc:
            script = ROOT / "packaging" / "windows" / "uvsweep.iss"
            subprocess.run([iscc, f"/DVersion={__version__}", str(script)], check=True)
        print(f"built {dist / 'uvsweep' / 'uvsweep.exe'}")
    else:  # pragma: no cover - macOS
        print(f"built {dist / 'uvsweep.app'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
