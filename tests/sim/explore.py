"""The scheduler: runs a world step by step and searches its interleavings.

A *step* lets one actor carry out the call it is parked before and run on to its next call. At
each step the scheduler picks among the runnable actors (blocked flock waiters are not runnable;
a sleeping, polling actor is runnable only once something changed since it went to sleep, or
when nobody else can run: then time passes). A *schedule* is the list of actors picked.

Strategies, all over the same `run` loop:
- `dfs`: every schedule within a bound on preemptions (a switch away from an actor that could
  have gone on), depth first and stateless: each branch is re-run from the start. States are
  remembered (kernel state, each actor's status and observation hash, who ran last) with the
  preemption budget they were explored with, so a state reached again by commuting steps is not
  explored again. That is exact, not a heuristic: actors are deterministic functions of what they
  observed, so equal fingerprints have equal futures.
- `random_runs`: seeded random schedules (switch with a given probability at each step).
- `scripted`: a scenario written as directives ("run R until it is about to unlink, then W1 until
  it blocks..."), which still means the same thing when the remover's code changes.
- `replay`: an exact schedule (as printed by a failing search), for this commit's code.

Checks on every run: never two uv actors in their critical sections at once; no actor crashed;
nobody is left blocked forever when nothing can run; the run ends within `max_steps`.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.sim.world import Actor, Scenario, World

#: What a chooser returns: the actor to run next, or None to stop the run here (pruned).
Chooser = Callable[["Step"], "Actor | None"]


@dataclass
class Step:
    """What a chooser sees at one scheduling point."""

    world: World
    index: int  # steps taken so far
    runnable: list[Actor]  # who may run now (sleepers that may time out last)
    current: Actor | None  # who ran last
    preemptions: int  # used so far
    timeouts: list[Actor]  # sleepers nothing woke, resumed only if a long time passes
    idle: bool = False  # nobody could run: every one in `runnable` is a sleeper nothing woke

    def costs(self, actor: Actor) -> int:
        """1 if running `actor` now is a preemption (a timeout always is one; when nobody could
        run, any sleeper but the first to wake up)."""
        if actor in self.timeouts:
            return 1
        if self.idle:
            return int(actor is not self.first_awake())
        current_can_go_on = self.current in self.runnable and self.current not in self.timeouts
        return int(current_can_go_on and actor is not self.current)

    def first_awake(self) -> Actor:
        """When nobody could run, time passes to the earliest wake-up: that sleeper's."""
        return min(self.runnable, key=lambda actor: actor.wake)

    def default(self) -> Actor:
        """Go on with the current actor while it can run, else the first runnable one (when
        nobody could run, the first sleeper to wake up)."""
        if self.idle:
            return self.first_awake()
        if self.current in self.runnable and self.current not in self.timeouts:
            return self.current
        return self.runnable[0]


@dataclass
class Outcome:
    """How one run ended."""

    schedule: list[str] = field(default_factory=list)  # actor names, one per step
    trace: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)  # (actor, call)
    seen: list[object] = field(default_factory=list)  # what each step's call returned
    # at each step: the actors that could run, what running each would cost, preemptions used
    points: list[tuple[tuple[str, ...], tuple[int, ...], int]] = field(default_factory=list)
    violation: str | None = None
    crash: str | None = None
    deadlock: str | None = None
    endless: str | None = None
    pruned: bool = False
    final: int | None = None  # the fingerprint of the state the run ended in
    results: dict[str, Any] = field(default_factory=dict)
    critical_sections: int = 0
    handoffs: int = 0  # locks the removers handed over to a new file
    keepers: int = 0  # keeper processes started
    most_fds: int = 0  # the most fds a uvsweep process held at once (when checked)

    @property
    def failure(self) -> str | None:
        return self.violation or self.crash or self.deadlock or self.endless

    def describe(self) -> str:
        lines = []
        for i, (name, call) in enumerate(self.trace):
            seen = self.seen[i] if i < len(self.seen) else _UNSEEN
            lines.append(f"  {i:4d} {name:3s} {_call(call)}{_result(seen)}")
        return "\n".join(lines)


_UNSEEN = object()


def _result(seen: object) -> str:
    """` -> what it returned`, for errors and short results only."""
    if seen is _UNSEEN or seen is None:
        return ""
    if isinstance(seen, tuple) and len(seen) == 2 and seen[0] == "error":
        return f" -> error {seen[1]}"
    text = repr(seen)
    return f" -> {text}" if len(text) <= 40 else ""


def _call(call: tuple[Any, ...]) -> str:
    name, *args = call
    return f"{name}({', '.join(repr(a) for a in args)})"


def encode(schedule: Sequence[str]) -> str:
    """`R*23 W1*3 ...`: a schedule, run-length encoded."""
    out: list[str] = []
    for name in schedule:
        if out and out[-1].split("*")[0] == name:
            head, _, count = out[-1].partition("*")
            out[-1] = f"{head}*{int(count or 1) + 1}"
        else:
            out.append(name)
    return " ".join(out)


def decode(text: str) -> list[str]:
    """The inverse of `encode`."""
    schedule: list[str] = []
    for part in text.split():
        name, _, count = part.partition("*")
        schedule.extend([name] * int(count or 1))
    return schedule


#: How long "a long time passes" is when a sleeper nothing woke is resumed anyway: long enough
#: for any bounded wait in the code under test (`clean` waits 2 s for handoffs) to run out.
LONG_PAUSE = 5.0


def run(
    scenario: Scenario, choose: Chooser, max_steps: int = 2000, timeouts: bool = True
) -> Outcome:
    """One run of `scenario`, every step picked by `choose`.

    With `timeouts`, a sleeping actor that nothing woke may also be picked while others can run
    (at the cost of a preemption): it then finds `LONG_PAUSE` seconds gone, as when every other
    process was descheduled meanwhile. Without a choice like that a bounded wait could never
    run out while some process is merely slow.
    """
    with _one_cpu():
        return _run(scenario, choose, max_steps, timeouts)


@contextmanager
def _one_cpu() -> Iterator[None]:
    """Every thread of a run on one CPU, the scheduler's with its actors': each step hands
    control from one thread to another (a lock released, another acquired), and a wakeup on
    another CPU made the searches twice as slow on this suite's 2-CPU VMs. The schedule decides
    the order of every step whatever the CPUs, so nothing else changes."""
    try:
        before: set[int] | None = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(before)})
    except (AttributeError, OSError):  # (no affinity on this OS, or not allowed)
        before = None  # (outside the handler: a run's own errors are not chained to this one)
    try:
        yield
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)


def _run(scenario: Scenario, choose: Chooser, max_steps: int, timeouts: bool) -> Outcome:
    world = World(scenario)
    out = Outcome()
    current: Actor | None = None
    preemptions = 0
    try:
        while True:
            runnable = [a for a in world.actors if a.runnable()]
            late: list[Actor] = []
            idle = not runnable
            if idle:
                runnable = [a for a in world.actors if a.may_time_out()]  # time passes
                if not runnable:
                    break
            elif timeouts:
                late = [a for a in world.actors if a.may_time_out()]
                runnable += late
            if len(out.schedule) >= max_steps:
                busy = [a.name for a in world.actors if a.status != "done"]
                out.endless = f"not done after {max_steps} steps: {', '.join(busy)}"
                break
            step = Step(world, len(out.schedule), runnable, current, preemptions, late, idle)
            actor = choose(step)
            if actor is None:
                out.pruned = True
                break
            names = tuple(a.name for a in runnable)
            out.points.append((names, tuple(step.costs(a) for a in runnable), preemptions))
            preemptions += step.costs(actor)
            if actor in late:
                actor.jump = LONG_PAUSE
            out.schedule.append(actor.name)
            out.trace.append((actor.name, actor.pending))
            actor.last = _UNSEEN
            actor.resume()
            out.seen.append(actor.last)
            current = actor
            world.after_step()
            if world.violation:
                out.violation = world.violation
                break
            crashed = [a for a in world.actors if a.error]
            if crashed:
                out.crash = f"{crashed[0].name} crashed:\n{crashed[0].error}"
                break
        if not out.pruned:
            out.final = world.fingerprint()
        if not (out.failure or out.pruned):
            stuck = [a.name for a in world.actors if a.status != "done"]
            if stuck:
                out.deadlock = f"blocked for ever with nothing left to run: {', '.join(stuck)}"
    finally:
        world.finish()
    out.results = {a.name: a.result for a in world.actors}
    out.critical_sections = sum(a.critical_sections for a in world.actors)
    out.handoffs = sum(getattr(r, "handoffs", 0) for r in out.results.values())
    out.keepers = sum(1 for a in world.actors if a.kind == "keeper")
    out.most_fds = world.most_fds
    return out


# ---- strategies --------------------------------------------------------------------------------


class DivergenceError(AssertionError):
    """A replayed schedule names an actor that cannot run at that point."""


def follow(schedule: Sequence[str], then: Chooser | None = None) -> Chooser:
    """Run `schedule` exactly, then `then` (the default: go on with the current actor)."""

    def choose(step: Step) -> Actor | None:
        if step.index < len(schedule):
            name = schedule[step.index]
            for actor in step.runnable:
                if actor.name == name:
                    return actor
            names = [a.name for a in step.runnable]
            raise DivergenceError(f"step {step.index}: {name} cannot run (runnable: {names})")
        return then(step) if then else step.default()

    return choose


#: A directive: run this actor until the condition holds (or it cannot run any more).
Directive = tuple[str, Callable[[Actor], bool]]


def before(call: str) -> Callable[[Actor], bool]:
    """Until the actor is parked before `call` (`unlink`, `flock`...)."""
    return lambda actor: actor.pending[0] == call


def in_critical(actor: Actor) -> bool:
    return actor.in_cs


def done(actor: Actor) -> bool:
    return actor.status == "done"


def blocked(actor: Actor) -> bool:
    return actor.status == "blocked" and not actor.runnable()


def scripted(directives: Sequence[Directive], then: Chooser | None = None) -> Chooser:
    """Follow `directives` in turn, then go on with `then` (the default choice if None).

    A directive ends when its condition holds or its actor cannot run. An actor asleep that
    nothing woke counts as unable to run, except under `done` ("to the end, however long it
    takes"), where it may time out if the run allows timeouts.
    """
    state = {"next": 0}

    def choose(step: Step) -> Actor | None:
        while state["next"] < len(directives):
            name, until = directives[state["next"]]
            actor = step.world.by_name(name)
            waits = actor in step.timeouts and until is not done
            if until(actor) or actor not in step.runnable or waits:
                state["next"] += 1
                continue
            return actor
        return then(step) if then is not None else step.default()

    return choose


@dataclass
class SearchReport:
    """What a search did."""

    runs: int = 0
    steps: int = 0
    states: int = 0
    seconds: float = 0.0
    failure: Outcome | None = None
    bound: int | None = None
    complete: bool = True  # False when stopped by `max_runs`/`deadline` before the end
    critical_sections: int = 0
    random: bool = False
    handoffs: int = 0  # runs in which a remover handed a lock over
    keepers: int = 0  # runs in which a keeper took a handoff over
    seed_run: int | None = None  # which random run failed
    finals: set[int] = field(default_factory=set)  # the states runs ended in
    most_fds: int = 0  # the most fds a uvsweep process held at once, over every run

    def summary(self) -> str:
        how = "random" if self.random else "exhaustive"
        how = how if self.complete else f"{how}, stopped by the deadline"
        bound = "" if self.bound is None else f", preemption bound {self.bound}"
        found = "no counterexample" if self.failure is None else "COUNTEREXAMPLE"
        fds = f" at most {self.most_fds} fds held by uvsweep," if self.most_fds else ""
        return (
            f"{how}{bound}: {self.runs} runs, {self.steps} steps, {self.states} distinct states,"
            f" {self.critical_sections} critical sections, {self.handoffs} runs with a handoff,"
            f" {self.keepers} with a keeper,{fds} {self.seconds:.1f} s: {found}"
        )


def dfs(
    scenario: Scenario,
    bound: int | None = 2,
    max_steps: int = 2000,
    max_runs: int | None = None,
    deadline: float | None = None,
    cache: bool = True,
    timeouts: bool = True,
    prefix: Sequence[str] = (),
) -> SearchReport:
    """Every schedule with at most `bound` preemptions (None: no bound), depth first.

    `cache=False` turns the pruning of states seen before off (every schedule is run to its end:
    a check that the pruning loses nothing, on small cases). `prefix`: every schedule starts
    with these steps (a situation set up by `scripted`, see `prefix_of`); its preemptions count
    against the bound.
    """
    report = SearchReport(bound=bound)
    began = time.monotonic()
    limit = float("inf") if bound is None else bound
    seen: dict[tuple[int, str | None], float] = {}
    fresh: set[int] = set()
    stack: list[list[str]] = [list(prefix)]
    while stack:
        if (max_runs is not None and report.runs >= max_runs) or (
            deadline is not None and time.monotonic() - began > deadline
        ):
            report.complete = False
            break
        prefix = stack.pop()
        expanded: list[int] = []

        def choose(
            step: Step, prefix: list[str] = prefix, expanded: list[int] = expanded
        ) -> Actor | None:
            if step.index < len(prefix):
                return follow(prefix)(step)
            key = (step.world.fingerprint(), step.current and step.current.name)
            left = limit - step.preemptions
            if cache and seen.get(key, -1.0) >= left:
                return None  # explored from here already, with at least this budget
            seen[key] = left
            fresh.add(key[0])
            expanded.append(step.index)
            return step.default()

        out = run(scenario, choose, max_steps, timeouts)
        report.runs += 1
        report.steps += len(out.schedule)
        report.critical_sections += out.critical_sections
        report.handoffs += bool(out.handoffs)
        report.keepers += bool(out.keepers)
        report.most_fds = max(report.most_fds, out.most_fds)
        if out.final is not None:
            report.finals.add(out.final)
        if out.failure:
            report.failure = out
            break
        for index in reversed(expanded):
            runnable, costs, used = out.points[index]
            chosen = out.schedule[index]
            for name, cost in reversed(list(zip(runnable, costs, strict=True))):
                if name != chosen and used + cost <= limit:
                    stack.append([*out.schedule[:index], name])
    report.states = len(fresh)
    report.seconds = time.monotonic() - began
    return report


def prefix_of(scenario: Scenario, directives: Sequence[Directive]) -> list[str]:
    """The schedule `directives` produce, up to where they end (for `dfs(prefix=...)`)."""
    return run(scenario, scripted(directives, then=lambda _step: None)).schedule


def random_runs(
    scenario: Scenario,
    seed: int,
    runs: int,
    switch: float = 0.3,
    max_steps: int = 2000,
    deadline: float | None = None,
    pause: int = 150,
    timeouts: bool = True,
    arrivals: int = 100,
) -> SearchReport:
    """`runs` random schedules from `seed`.

    At each step the current actor is switched away from with probability `switch`; the actor
    switched away from is then *paused* for a random number of steps (up to `pause`), picked
    only if nothing else can run. Long pauses are what real preemption looks like ("uv was
    descheduled for 3 s between its open and its flock"), and plain random switching almost
    never produces them. Likewise each actor starts at a random step up to `arrivals`: uv
    processes do not all start at once.
    """
    specs = scenario.actor_specs()
    report = SearchReport(random=True)
    began = time.monotonic()
    states: set[int] = set()
    for number in range(runs):
        if deadline is not None and time.monotonic() - began > deadline:
            report.complete = False
            break
        rng = random.Random(seed * 1_000_003 + number)
        # every actor arrives at a random step (runs earlier only if nothing else can run)
        paused = {name: rng.randint(0, arrivals) for name, _kind, _body in specs}

        def choose(
            step: Step, rng: random.Random = rng, paused: dict[str, int] = paused
        ) -> Actor | None:
            states.add(step.world.fingerprint())
            awake = [a for a in step.runnable if paused.get(a.name, 0) <= step.index]
            pool = awake or step.runnable
            current = step.current
            if current in pool and rng.random() >= switch:
                return current
            if current is not None and current in pool and pause:
                paused[current.name] = step.index + rng.randint(1, pause)
                pool = [a for a in pool if a is not current] or pool
            return rng.choice(pool)

        out = run(scenario, choose, max_steps, timeouts)
        report.runs += 1
        report.steps += len(out.schedule)
        report.critical_sections += out.critical_sections
        report.handoffs += bool(out.handoffs)
        report.keepers += bool(out.keepers)
        report.most_fds = max(report.most_fds, out.most_fds)
        if out.failure:
            report.failure = out
            report.seed_run = number
            break
    report.states = len(states)
    report.seconds = time.monotonic() - began
    return report
