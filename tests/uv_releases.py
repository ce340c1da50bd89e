"""Real uv releases and wheels from the package registry, downloaded once and kept between runs.

`pip download` fetches each wheel into the user cache dir (`$UVSWEEP_TEST_CACHE`, else
`$XDG_CACHE_HOME/uvsweep-tests`, else `~/.cache/uvsweep-tests`); a release's `uv` binary is
unpacked next to it. A second run finds everything there and touches no network.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    explicit = os.environ.get("UVSWEEP_TEST_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "uvsweep-tests"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def download(python: str, requirement: str, dest: Path) -> Path:
    """The wheel for `requirement` (`name==version`), fetched once into `dest`."""
    name = requirement.split("==", maxsplit=1)[0].replace("-", "_")
    with _locked(dest / ".lock"):
        found = sorted(dest.glob(f"{name}-*.whl"))
        if not found:
            subprocess.run(
                [python, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                 "--disable-pip-version-check", "-d", str(dest), requirement],
                check=True, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            found = sorted(dest.glob(f"{name}-*.whl"))
        return found[0]


def uv_release(python: str, version: str) -> Path:
    """The `uv` binary of release `version`, from its wheel on the registry."""
    dest = cache_root() / "uv" / version
    binary = dest / "uv"
    if binary.exists():
        return binary
    wheel = download(python, f"uv=={version}", dest)
    with _locked(dest / ".lock"), zipfile.ZipFile(wheel) as archive:
        if not binary.exists():
            member = next(n for n in archive.namelist() if n.endswith(".data/scripts/uv"))
            partial = dest / "uv.partial"
            partial.write_bytes(archive.read(member))
            partial.chmod(0o755)
            partial.rename(binary)
    return binary


def wheel(python: str, requirement: str) -> Path:
    """A wheel (e.g. `setuptools==80.9.0`) for offline builds through `--find-links`."""
    return download(python, requirement, cache_root() / "wheels" / requirement.replace("==", "-"))
