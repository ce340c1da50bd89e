"""The README's Dockerfile line, run word for word as a `RUN` step would run it: as root, with a
/tmp of its own (a private tmpfs in a mount namespace, as a build layer has) and a PID namespace
with its own /proc (as a container has: processes outside it are hidden), a real
`uv pip install --system` and a real `uvx uvsweep clean --all-users`. No lock file may be left
in /tmp, which is what the layer would keep.

What differs from a real build, and only this: `uvx` takes uvsweep from a wheel of this checkout
(`--from`, a one-line wrapper), the requirement is a local wheel (`UV_FIND_LINKS`), and the
"system" Python's site-packages is a tmpfs inside the namespace, so the install is real but never
reaches the machine."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import base_python, make_wheel, need

pytestmark = [
    pytest.mark.integration,
    pytest.mark.linux,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mount namespaces"),
]

ROOT = Path(__file__).resolve().parents[2]


def readme_run_line() -> str:
    """The one `RUN` line in the README's ```dockerfile block."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```dockerfile\n(.*?)```", readme, re.DOTALL)
    assert len(blocks) == 1, "the README has one Dockerfile example"
    (line,) = [line for line in blocks[0].splitlines() if line.strip()]
    assert line.startswith("RUN "), line
    return line[len("RUN ") :]


def test_the_readme_has_the_dockerfile_line_this_test_runs() -> None:
    command = readme_run_line()
    steps = [shlex.split(step) for step in command.split("&&")]
    assert steps[0][:4] == ["uv", "pip", "install", "--system"]
    assert steps[-1][:4] == ["uvx", "uvsweep", "clean", "--all-users"]


def test_the_readme_dockerfile_line_leaves_no_lock_in_the_layer(tmp_path: Path, uv: str) -> None:
    need(os.geteuid() == 0, "the Dockerfile step runs as root (as a RUN step does)")
    unshare = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    need(
        unshare.returncode == 0,
        "unshare --mount (util-linux, as root) gives the step a private /tmp, as a layer has",
    )
    need(os.path.isdir("/mnt"), "an empty /mnt to keep the real /tmp reachable under")
    command = readme_run_line()

    def moved(path: object) -> str:
        # inside the step /tmp is a fresh tmpfs: what lived there is reached through /mnt
        text = str(path)
        return "/mnt" + text[4:] if text == "/tmp" or text.startswith("/tmp/") else text

    # uvsweep as a wheel of this checkout, and the requirement as a local wheel
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinydep", "1.0")
    built = subprocess.run(
        [uv, "build", "--quiet", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (uvsweep_wheel,) = (tmp_path / "dist").glob("uvsweep-*.whl")
    # the step's PATH: uv, a uvx that takes uvsweep from that wheel, and a non-venv Python
    python = base_python()
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    need(not site.startswith("/tmp/"), "a base Python outside /tmp")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    real_uvx = Path(uv).with_name("uvx")
    assert real_uvx.exists(), real_uvx
    (bindir / "uv").symlink_to(moved(uv))
    (bindir / "uvx").write_text(
        f'#!/bin/sh\nexec {moved(real_uvx)} --from {moved(uvsweep_wheel)} "$@"\n'
    )
    (bindir / "uvx").chmod(0o755)
    for name in ("python", "python3"):
        (bindir / name).symlink_to(moved(python))
    work = tmp_path / "work"
    work.mkdir()
    (work / "requirements.txt").write_text("tinydep\n")
    script = textwrap.dedent(
        f"""\
        set -e
        mount --rbind /tmp /mnt
        mount -t tmpfs tmpfs /tmp
        mount -t tmpfs tmpfs {shlex.quote(site)}
        unset TMPDIR
        cd {shlex.quote(moved(work))}
        touch /tmp/uv-00000000000000aa.lock && chown 65534:65534 /tmp/uv-00000000000000aa.lock
        echo "before: $(ls -A /tmp | grep -c '^uv-' || true)"
        set +e
        sh -ec "$README_COMMAND"
        echo "rc=$?"
        echo "installed: $(ls {shlex.quote(site)} | grep -c '^tinydep' || true)"
        echo "after: $(ls -A /tmp | grep '^uv-' | tr '\\n' ' ')."
        """
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))},
        "PATH": f"{moved(bindir)}:/usr/bin:/bin",
        "README_COMMAND": command,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_FIND_LINKS": moved(wheels),
        "UV_BREAK_SYSTEM_PACKAGES": "1",  # a Debian /usr/bin/python3 is externally managed
    }
    namespaces = ["--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc"]
    done = subprocess.run(
        ["unshare", *namespaces, "sh", "-c", script],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    report = done.stdout + done.stderr
    assert "before: 1" in lines, report  # another user's orphan, which only --all-users removes
    assert "rc=0" in lines, report
    assert "installed: 2" in lines, report  # tinydep/ and its dist-info: the install was real
    assert lines[-1] == "after: .", report
