"""The desktop commands: the tray app, start at login (`autostart`), the application menu
entry (`desktop-entry`), and the tray's notification helper (`_notifyd`)."""
# ruff: noqa: PLC0415 - each command imports what it alone needs (start-up time)

from __future__ import annotations

import os

from uvsweep import system
from uvsweep.cli.main import CommandError, Console, ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any


def watch_signals(on_signal: Callable[[], None]) -> Callable[[], None]:
    """Run `on_signal` on a thread of its own at SIGINT/SIGTERM; returns a function that stops
    that thread. (Signals are blocked in every other thread, so a toolkit's main loop in C never
    swallows them.)"""
    import signal
    import threading

    wanted = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        previous = signal.signal(signal.SIGINT, lambda _s, _f: on_signal())

        def restore() -> None:
            signal.signal(signal.SIGINT, previous)

        return restore
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    done = threading.Event()

    def wait() -> None:
        signal.sigwait(wanted)
        if not done.is_set():
            on_signal()

    thread = threading.Thread(target=wait, name="uvsweep-signals", daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        if thread.is_alive():
            os.kill(os.getpid(), signal.SIGTERM)  # wakes sigwait; blocked everywhere else
            thread.join(1.0)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, wanted)

    return stop


def cmd_tray(args: argparse.Namespace, console: Console) -> ExitStatus:
    """Run the tray app until Quit, SIGTERM or the end of the session."""
    from uvsweep.tray import lean

    lean.one_malloc_arena()  # first: before any thread has an arena of its own
    from uvsweep import autostart, scanner, settings
    from uvsweep.tray import app as tray
    from uvsweep.tray import backends
    from uvsweep.tray.instance import SingleInstance

    config = settings.load(repair=True)
    for warning in config.warnings:
        console.err(warning)
    choice = backends.choose(config.tray_backend)
    if choice.name == "none":
        console.err(f"{choice.why}: the tray app needs a desktop session. In a terminal, use"
                    " `uvsweep scan`, `uvsweep clean` or `uvsweep watch`.")  # fmt: skip
        return ExitStatus.NO_DISPLAY
    instance = SingleInstance()
    try:
        acquired = instance.acquire()
    except OSError as err:
        raise CommandError(f"cannot take the single-instance lock {instance.path}: {err}") from err
    if not acquired:
        holder = instance.holder()
        running = f"uvsweep is already running{f' (pid {holder})' if holder else ''}"
        if instance.ask_to_show():
            console.out(f"{running}; asked it to show its icon again.")
        else:
            console.out(f"{running}.")
        return ExitStatus.OK
    factory: Callable[[Any], Any] = tray.pystray_icon
    if choice.name == "sni":
        os.environ["PYSTRAY_BACKEND"] = "dummy"  # only pystray's menu classes are used
        factory = tray.sni_icon
    else:
        os.environ["PYSTRAY_BACKEND"] = choice.name
    problem = tray.load_backend()
    if problem:
        instance.release()
        console.err(f"cannot show a tray icon ({problem}). In a terminal, use `uvsweep scan`,"
                    " `uvsweep clean` or `uvsweep watch`.")  # fmt: skip
        return ExitStatus.NO_DISPLAY
    dirs = scanner.resolve_dirs(args.dirs, config)
    import logging  # not on the scan path

    from uvsweep.tray import logfile

    log_path = logfile.setup() or ""
    logging.getLogger("uvsweep.tray").info("tray started: backend %s; watching %s", choice,
                                           ", ".join(dirs))  # fmt: skip
    app = tray.TrayApp(dirs, config, save_settings=settings.save,
                       autostart=autostart.for_platform(), backend=choice,
                       log_path=log_path)  # fmt: skip
    stop_signals = watch_signals(app.quit)  # first: threads started later block the signals
    instance.serve(app.reshow)  # a second `uvsweep` asks us to show ourselves again
    try:
        app.run(factory)
    finally:
        stop_signals()
        instance.release()
        logfile.close()
    return ExitStatus.OK


def run_notifyd(argv: Sequence[str]) -> int:
    """The tray's notification helper, `uvsweep _notifyd [--icon PATH]` (not in --help; see
    uvsweep.tray.notifyd)."""
    from uvsweep.tray import notifyd

    icon = argv[argv.index("--icon") + 1] if "--icon" in argv[:-1] else None
    return notifyd.main(icon)


def _entry(
    console: Console,
    command: str,
    action: str,
    write: Callable[[Sequence[str]], Any],
    take_out: Callable[[], Any],
    status: Callable[[], Any],
    words: tuple[str, str],
) -> Any:
    """Write an autostart or menu entry (`action` is its first choice), take it out (the
    second) or read its status, and print its state: words[0] when on, words[1] when off."""
    from uvsweep import autostart

    try:
        if action == "status":
            state = status()
        elif action in ("enable", "install"):
            try:
                launcher = autostart.installed_command()
            except ValueError as err:
                raise CommandError(str(err)) from None
            state = write(launcher)
        else:
            state = take_out()
    except OSError as err:
        raise CommandError(f"{command} {action}: {system.reason(err)}") from err
    if action == "status" or not console.quiet:
        console.out(words[0] if state.enabled else words[1])
        console.out(f"entry: {state.where}")
        if state.detail:
            console.out(f"{'runs' if state.enabled else 'why'}: {state.detail}")
    return state


def cmd_autostart(args: argparse.Namespace, console: Console) -> ExitStatus:
    """Turn start-at-login on or off, or say whether it is on."""
    from uvsweep import autostart

    writer = autostart.for_platform()
    state = _entry(console, "autostart", args.action, writer.enable, writer.disable,
                   writer.status, ("enabled", "disabled"))  # fmt: skip
    if args.action == "enable" and not state.enabled:
        raise CommandError(f"the entry was written but the system reports it off: {state.detail}")
    return ExitStatus.OK


def cmd_desktop_entry(args: argparse.Namespace, console: Console) -> ExitStatus:
    """Put uvsweep in the Linux application menu, take it out, or say whether it is there."""
    from uvsweep import autostart

    if not system.XDG:
        raise CommandError("desktop-entry is for Linux and the BSDs: the macOS app and the Windows"
                           " installer add their own launchers")  # fmt: skip
    menu = autostart.MenuEntry()
    _entry(console, "desktop-entry", args.action, menu.install, menu.remove, menu.status,
           ("installed", "not installed"))  # fmt: skip
    return ExitStatus.OK
