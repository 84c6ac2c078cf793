"""The soak run (issue 19): a whole supervised local run, 20 conversations at once for `minutes`, with a
random fault from the fault suite (tests/faults/) every `fault_every_s`; then every conversation's stored
history is compared with what its user was told.

Each turn is counted as one of:

- **answered**: the bot answered (the apology of a failed custom action counts: the user was told, and the
  message is stored; `answered_with_apology` counts those);
- **failed visibly**: the user was told it was not sent (`channels.failure.NOT_SAVED`), or their client
  could not deliver it (connection refused or timed out while Rasa restarts: the widget shows it as not
  sent);
- **lost**: answered, but missing from the conversation's stored history. Must be 0; and **duplicated**,
  more messages stored than were sent. Must be 0.

Memory is each process's resident size (VmRSS, with its children) at the start and at the end; a process
restarted by a fault is measured as it is at the end, and its restarts are counted.

`python -m scripts.bench.soak --minutes 2` runs it alone; `make bench` runs it as the extra `soak`
(`KEYMEDIC_SOAK_MINUTES`, default 30; 2 with `--quick`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.demo import prepare_database
from bot.launcher import (
    Service,
    Supervisor,
    child_environment,
    isolated_environment,
    isolated_settings,
    local_services,
    start_services,
    stop_services,
)
from bot.training import ensure_model
from channels.failure import NOT_SAVED
from rasa_plugins.action_guard import APOLOGY
from scripts.bench.memory import descendants, process_parents

__all__ = [
    "SoakResult",
    "soak",
    "main",
    "lost_turns",
    "minutes_from_environment",
    "DEFAULT_MINUTES",
    "CONVERSATIONS",
]

DEFAULT_MINUTES = 30.0
CONVERSATIONS = 20
FAULT_EVERY_S = 20.0
# What each conversation says, round and round: greetings, the key-update form (custom actions), a side
# question, and a restart so the form starts again.
SCRIPT = ("hi", "my kraken key stopped working", "kraken", "what does read-only mean?", "/restart")
TURN_TIMEOUT_S = 20.0
FAULTS = (
    "kill actions",
    "hang actions",
    "kill web",
    "hang web",
    "kill worker",
    "hang worker",
    "kill sandbox",
    "hang sandbox",
    "lock database",
    "oversized burst",
    "kill rasa",
)


@dataclass
class Conversation:
    sender: str
    answered: list[str] = field(default_factory=list)  # the messages the user saw answered, in order
    failed_visibly: int = 0
    answered_turns: int = 0
    apologies: int = 0  # answered with the action guard's apology (the action server failed)


@dataclass
class SoakResult:
    minutes: float
    conversations: int
    answered: int
    answered_with_apology: int
    failed_visibly: int
    lost: int
    duplicated: int
    faults: dict[str, int]
    restarts: dict[str, int]
    memory_start_mib: dict[str, float]
    memory_end_mib: dict[str, float]
    supervisor_gave_up: str | None

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _rss_mib(pid: int) -> float:
    """Resident memory of `pid` and its descendants, in MiB (`descendants` includes `pid` itself)."""
    total = 0
    for member in descendants(pid, process_parents()):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def _memory(services: list[Service]) -> dict[str, float]:
    """Each running process's RSS, Rasa's standby (bot/launcher.py `Standby`) as `<name> standby`."""
    found = {
        s.name: _rss_mib(s.process.pid)
        for s in services
        if s.process is not None and s.process.poll() is None
    }
    for s in services:
        if s.standby is not None and s.standby.process is not None and s.standby.process.poll() is None:
            found[f"{s.name} standby"] = _rss_mib(s.standby.process.pid)
    return found


@contextmanager
def _supervised_run(var_dir: Path) -> Iterator[tuple[list[Service], dict[str, str], list[str]]]:
    """A whole local run in `var_dir`, kept alive by `keymedic run`'s supervisor in a thread."""
    settings = isolated_settings(var_dir)
    env = child_environment(settings, isolated_environment(var_dir))
    prepare_database(settings)
    services = local_services(settings, ensure_model())
    supervisor = Supervisor(services, env, var_dir / "logs")
    gave_up: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                supervisor.look()
            except RuntimeError as error:
                gave_up.append(str(error).splitlines()[0])
                return
            stop.wait(0.25)

    watcher = threading.Thread(target=watch, name="supervisor", daemon=True)
    try:
        start_services(services, env, var_dir / "logs")
        watcher.start()
        yield services, env, gave_up
    finally:
        stop.set()
        watcher.join(timeout=5)
        for service in services:
            if service.process is not None and service.process.poll() is None:
                os.killpg(service.process.pid, signal.SIGCONT)
        stop_services(services)


def _talk(rasa_url: str, conversation: Conversation, stop: threading.Event) -> None:
    with httpx.Client(trust_env=False, timeout=TURN_TIMEOUT_S) as client:
        step = 0
        while not stop.is_set():
            text = SCRIPT[step % len(SCRIPT)]
            try:
                response = client.post(
                    f"{rasa_url}/webhooks/rest/webhook", json={"sender": conversation.sender, "message": text}
                )
                response.raise_for_status()
                texts: list[str] | None = [str(r.get("text") or "") for r in response.json()]
            except (httpx.HTTPError, ValueError):
                texts = None  # not delivered: the client shows the message as not sent
            # An empty answer is an answer (`/restart` says nothing); NOT_SAVED is the turn failing visibly.
            if texts is not None and NOT_SAVED not in texts:
                conversation.answered.append(text)
                conversation.answered_turns += 1
                conversation.apologies += APOLOGY in texts
                step += 1
            else:
                # Not sent, and the user knows it: they send it again (after a moment, as a person would).
                conversation.failed_visibly += 1
                stop.wait(1.0)
            stop.wait(random.uniform(0.2, 1.0))


def _fault(name: str, services: list[Service], env: dict[str, str], rasa_url: str) -> None:
    """Do `name` to the running stack; returns once it is over (a hang lasts up to 15 s, or until the
    supervisor kills the hung process)."""
    action, _, target = name.partition(" ")
    by_name = {s.name: s for s in services}
    if action in ("kill", "hang"):
        process = by_name[target].process
        if process is None or process.poll() is not None:
            return
        if action == "kill":
            os.killpg(process.pid, signal.SIGKILL)
            return
        os.killpg(process.pid, signal.SIGSTOP)
        time.sleep(random.uniform(5, 15))
        try:
            os.killpg(process.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        return
    if name == "lock database":
        connection = sqlite3.connect(env["KEYMEDIC_TRACKER_DB"], timeout=5, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            time.sleep(random.uniform(2, 8))
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    if name == "oversized burst":
        body = json.dumps({"sender": f"flood-{uuid.uuid4().hex[:8]}", "message": "word " * 200_000}).encode()
        with httpx.Client(trust_env=False, timeout=30) as client:
            for _ in range(20):
                try:
                    client.post(
                        f"{rasa_url}/webhooks/rest/webhook",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                except httpx.HTTPError:
                    pass
        return
    raise ValueError(f"unknown fault {name!r}")


def _stored_messages(rasa_url: str, token: str, sender: str) -> list[str]:
    for _ in range(60):
        try:
            response = httpx.get(
                f"{rasa_url}/conversations/{sender}/tracker",
                # Every event, not only those after the last `/restart` (Rasa's default).
                params={"token": token, "include_events": "ALL"},
                timeout=30,
                trust_env=False,
            )
            response.raise_for_status()
            return [str(e.get("text")) for e in response.json()["events"] if e.get("event") == "user"]
        except httpx.HTTPError:
            time.sleep(2)  # Rasa restarting after the last fault
    raise RuntimeError(f"could not read the conversation {sender}")


def lost_turns(answered: list[str], stored: list[str]) -> int:
    """How many answered messages are missing from the stored history, read in order.

    A message the user saw fail may still be stored (Rasa took it, then the client gave up waiting while
    Rasa was restarting), so the answered messages must appear in the stored history as a subsequence,
    not as the whole of it."""
    position = 0
    lost = 0
    for text in answered:
        found = next((i for i in range(position, len(stored)) if stored[i] == text), None)
        if found is None:
            lost += 1
        else:
            position = found + 1
    return lost


def soak(
    minutes: float = DEFAULT_MINUTES, *, say: Callable[[str], None] = print, seed: int | None = None
) -> SoakResult:
    """Run the soak for `minutes` and return its figures."""
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory(prefix="keymedic-soak-") as folder,
        _supervised_run(Path(folder)) as (
            services,
            env,
            gave_up,
        ),
    ):
        rasa = next(s for s in services if s.name == "rasa")
        rasa_url = rasa.url
        pids = {s.name: s.process.pid for s in services if s.process is not None}
        # Measured once Rasa's standby has loaded too: it starts after the serving Rasa is ready.
        loaded_by = time.monotonic() + 180
        while rasa.standby is not None and not rasa.standby.loaded() and time.monotonic() < loaded_by:
            time.sleep(0.5)
        memory_start = _memory(services)
        say(f"soak: {CONVERSATIONS} conversations for {minutes:g} min, a fault every {FAULT_EVERY_S:.0f} s")
        conversations = [Conversation(f"soak-{i}-{uuid.uuid4().hex[:6]}") for i in range(CONVERSATIONS)]
        stop = threading.Event()
        talkers = [
            threading.Thread(target=_talk, args=(rasa_url, c, stop), daemon=True) for c in conversations
        ]
        for thread in talkers:
            thread.start()
        faults: Counter[str] = Counter()
        restarts: Counter[str] = Counter()
        deadline = time.monotonic() + minutes * 60
        try:
            while time.monotonic() < deadline - FAULT_EVERY_S and not gave_up:
                stop.wait(min(FAULT_EVERY_S, max(0.0, deadline - time.monotonic())))
                # Rasa's restart reloads its model (tens of seconds): rarer than the others.
                name = rng.choice(FAULTS if rng.random() < 0.3 else FAULTS[:-1])
                say(f"soak: {name}")
                _fault(name, services, env, rasa_url)
                faults[name] += 1
            stop.wait(max(0.0, deadline - time.monotonic()))
        finally:
            stop.set()
            for thread in talkers:
                thread.join(timeout=TURN_TIMEOUT_S + 5)
        # Let everything come back, then compare every conversation with its stored history.
        ready_by = time.monotonic() + 240
        while not all(s.ready is None or s.ready() for s in services) and time.monotonic() < ready_by:
            time.sleep(1)
        for service in services:
            if service.process is not None and service.process.pid != pids.get(service.name):
                restarts[service.name] += 1  # at least one; the supervisor's log has each
        lost = duplicated = 0
        for conversation in conversations:
            stored = _stored_messages(rasa_url, env["KEYMEDIC_RASA_TOKEN"], conversation.sender)
            lost += lost_turns(conversation.answered, stored)
            # Stored more often than sent (each try counts once): a turn saved twice.
            duplicated += max(0, len(stored) - conversation.answered_turns - conversation.failed_visibly)
        return SoakResult(
            minutes=minutes,
            conversations=CONVERSATIONS,
            answered=sum(c.answered_turns for c in conversations),
            answered_with_apology=sum(c.apologies for c in conversations),
            failed_visibly=sum(c.failed_visibly for c in conversations),
            lost=lost,
            duplicated=duplicated,
            faults=dict(faults),
            restarts=dict(restarts),
            memory_start_mib=memory_start,
            memory_end_mib=_memory(services),
            supervisor_gave_up=gave_up[0] if gave_up else None,
        )


def minutes_from_environment(quick: bool) -> float:
    value = os.environ.get("KEYMEDIC_SOAK_MINUTES", "").strip()
    return float(value) if value else (2.0 if quick else DEFAULT_MINUTES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=minutes_from_environment(False))
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    result = soak(args.minutes, seed=args.seed)
    print(json.dumps(result.as_json(), indent=2))
    return 0 if result.lost == 0 and result.duplicated == 0 and result.supervisor_gave_up is None else 1


if __name__ == "__main__":
    sys.exit(main())
