"""uvsweep.system: the OS family of each `sys.platform` value, and OSError messages."""

from __future__ import annotations

import errno
import os
import sys

import pytest

from uvsweep import system


@pytest.mark.parametrize(
    ("platform", "family"),
    [("linux", "linux"), ("linux2", "linux"), ("win32", "windows"), ("cygwin", "other"),
     ("darwin", "macos"), ("freebsd14", "bsd"), ("openbsd7", "bsd"), ("netbsd10", "bsd"),
     ("emscripten", "other"), ("aix", "other")],
)  # fmt: skip
def test_family_of_each_platform(platform: str, family: str) -> None:
    assert system.family(platform) == family
    assert system.is_linux(platform) == (family == "linux")
    assert system.is_windows(platform) == (family == "windows")
    assert system.is_macos(platform) == (family == "macos")
    assert system.is_xdg(platform) == (family in ("linux", "bsd"))


def test_the_flags_describe_this_os() -> None:
    assert system.family(sys.platform) == system.FAMILY
    assert [system.LINUX, system.WINDOWS, system.MACOS].count(True) <= 1
    assert (os.name == "posix") == system.POSIX


def test_reason_gives_the_os_words_without_the_path() -> None:
    err = PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/tmp/x")
    assert system.reason(err) == os.strerror(errno.EACCES)
    assert system.reason(OSError("no words from the OS")) == "no words from the OS"
