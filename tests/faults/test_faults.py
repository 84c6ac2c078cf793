"""The fault suite (issue 19): each test breaks one thing in a running KeyMedic and asserts what the user
sees and within how long, that no turn is lost or duplicated, and how long the run takes to recover. The
numbers it measures are printed (`-s`) and summed up in docs/reliability.md."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest

from bot.config import PROJECT_ROOT
from bot.sandbox.scenarios import credentials_for
from channels.failure import NOT_SAVED
from rasa_plugins.action_guard import APOLOGY
from tests.faults.conftest import (
    ANSWER_WITHIN_S,
    BACK_WITHIN_S,
    FaultStack,
    Turn,
    kill,
    pause,
    replies_of,
    resume,
    until,
)

pytestmark = [pytest.mark.integration, pytest.mark.rasa_model]

# A message whose turn calls the action server (the key-update form and its validator).
NEEDS_ACTIONS = "my kraken key stopped working"
DEMO = "demo"


# Rasa killed: answering again within, the target. A whole Rasa start is 15-20 s here (imports, then
# the model load: docs/reliability.md, "Rasa's start"); the standby kept loaded by the supervisor takes over
# instead, and is answering well under a second after the kill.
RASA_BACK_WITHIN_S = 10.0
# A whole Rasa start, with room for the machine's load (measured 15-27 s at load average 3-6).
RASA_WHOLE_START_WITHIN_S = 60.0
# A frozen worker's heartbeat is stale after 5 s; the supervisor checks every 2 s and kills on the third
# failed check (bot/launcher.py), so about 10 s, with slack for a loaded machine.
WORKER_HANG_DETECTED_WITHIN_S = 15.0


def _user() -> str:
    return f"fault-{uuid.uuid4().hex[:10]}"


def _report(fault: str, **numbers: Any) -> None:
    shown = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in numbers.items())
    print(f"\n[fault] {fault}: {shown}")


def _normal(turn: Turn) -> bool:
    return bool(turn.texts) and APOLOGY not in turn.texts and NOT_SAVED not in turn.texts and not turn.error


def _answered_normally_again(stack: FaultStack, timeout: float) -> tuple[float, list[str]]:
    """Seconds until a fresh user's action-needing message is answered normally; the messages sent."""
    user = _user()
    sent: list[str] = []

    def attempt() -> bool:
        sent.append(NEEDS_ACTIONS)
        return _normal(stack.say(user, NEEDS_ACTIONS, timeout=15))

    return until(attempt, timeout, 0.5), sent


def _memory_mib(pid: int) -> dict[str, int]:
    """Resident, proportional and private (unique) memory of one process, in MiB (smaps_rollup)."""
    kib: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                kib[name] = int(rest.split()[0])
    return {
        "rss": kib["Rss"] // 1024,
        "pss": kib["Pss"] // 1024,
        "private": (kib["Private_Clean"] + kib["Private_Dirty"]) // 1024,
    }


def _no_turn_lost_or_doubled(stack: FaultStack, user: str, sent: list[str]) -> None:
    assert stack.user_messages(user) == sent


# -- the action server -------------------------------------------------------------------------------------


def test_actions_hung_the_user_hears_within_10_s_and_the_form_does_not_move(stack: FaultStack) -> None:
    user, bystander = _user(), _user()
    pid = stack.pid("actions")
    pause(pid)
    try:
        turn = stack.say(user, NEEDS_ACTIONS)
        other = stack.say(bystander, "hi")  # a turn without custom actions
    finally:
        resume(pid)
    assert APOLOGY in turn.texts, replies_of(turn)
    assert turn.seconds <= ANSWER_WITHIN_S
    assert _normal(other) and other.seconds < 2
    # The supervisor may have found it hung meanwhile and restarted it; either way, once it is ready, nothing
    # is half-done: the same message starts the form from its beginning.
    until(lambda: stack.ready("actions"), 30, 0.2)
    again = stack.say(user, NEEDS_ACTIONS)
    assert _normal(again) and any("secure form" in t for t in again.texts), replies_of(again)
    _no_turn_lost_or_doubled(stack, user, [NEEDS_ACTIONS, NEEDS_ACTIONS])
    _report("actions hung (resumed after the turn)", answer_s=turn.seconds, bystander_s=other.seconds)


def test_actions_hung_for_good_is_killed_and_restarted(stack: FaultStack) -> None:
    hung = stack.pid("actions")
    pause(hung)
    started = time.monotonic()
    user = _user()
    turn = stack.say(user, NEEDS_ACTIONS)
    assert APOLOGY in turn.texts and turn.seconds <= ANSWER_WITHIN_S, replies_of(turn)
    recovered, sent = _answered_normally_again(stack, 60)
    assert stack.pid("actions") != hung
    _no_turn_lost_or_doubled(stack, user, [NEEDS_ACTIONS])
    _report("actions hung for good", answer_s=turn.seconds, recovered_s=time.monotonic() - started)


def test_actions_killed_the_user_hears_at_once_and_it_is_back_within_10_s(stack: FaultStack) -> None:
    user = _user()
    kill(stack.pid("actions"))
    started = time.monotonic()
    turn = stack.say(user, NEEDS_ACTIONS)
    assert turn.seconds <= ANSWER_WITHIN_S
    assert APOLOGY in turn.texts or _normal(turn), replies_of(turn)
    back = until(lambda: stack.answers("actions"), BACK_WITHIN_S)
    back_s = time.monotonic() - started
    assert back_s <= BACK_WITHIN_S
    assert _normal(stack.say(_user(), NEEDS_ACTIONS))
    _no_turn_lost_or_doubled(stack, user, [NEEDS_ACTIONS])
    _report("actions killed", answer_s=turn.seconds, back_s=back_s, waited_s=back)


# -- the web app, the worker, the sandbox: the chat goes on --------------------------------------------------


@pytest.mark.parametrize("name", ["web", "worker", "sandbox"])
def test_a_killed_helper_process_is_back_within_10_s_and_the_chat_never_stops(
    stack: FaultStack, name: str
) -> None:
    user = _user()
    old = stack.pid(name)
    kill(old)
    started = time.monotonic()
    turns = [stack.say(user, "hi")]
    until(lambda: stack.service(name).process is not None and stack.service(name).process.pid != old, 5)
    until(lambda: stack.answers(name), BACK_WITHIN_S)
    back_s = time.monotonic() - started
    turns.append(stack.say(user, "hi"))
    assert all(_normal(t) and t.seconds < 2 for t in turns), [replies_of(t) for t in turns]
    assert back_s <= BACK_WITHIN_S
    _no_turn_lost_or_doubled(stack, user, ["hi", "hi"])
    _report(f"{name} killed", back_s=back_s, chat_s=max(t.seconds for t in turns))


@pytest.mark.parametrize("name", ["web", "sandbox"])
def test_a_hung_helper_process_is_killed_and_restarted_while_the_chat_goes_on(
    stack: FaultStack, name: str
) -> None:
    user = _user()
    hung = stack.pid(name)
    pause(hung)
    started = time.monotonic()
    turn = stack.say(user, "hi")
    until(lambda: stack.service(name).process is not None and stack.service(name).process.pid != hung, 30)
    until(lambda: stack.answers(name), 30)
    recovered_s = time.monotonic() - started
    assert _normal(turn) and turn.seconds < 2
    _no_turn_lost_or_doubled(stack, user, ["hi"])
    _report(f"{name} hung", recovered_s=recovered_s, chat_s=turn.seconds)


def test_a_hung_worker_is_killed_and_restarted_and_its_queued_job_then_runs(stack: FaultStack) -> None:
    # The worker has no port: its heartbeat file goes stale (bot/worker_liveness.py), the supervisor kills
    # and restarts it; a job queued meanwhile waits in the queue and runs once after. The chat never notices.
    from huey.storage import SqliteStorage

    from bot.jobs import deliver_outbox, huey

    user = _user()
    hung = stack.pid("worker")
    pause(hung)
    started = time.monotonic()
    previous = huey.storage
    huey.storage = SqliteStorage(huey.name, filename=str(stack.settings.var_dir / "jobs.db"))
    try:
        job = deliver_outbox()  # a delivery pass, queued while the worker is frozen
        turns = [stack.say(user, "hi"), stack.say(user, NEEDS_ACTIONS)]
        until(
            lambda: (
                stack.service("worker").process is not None and stack.service("worker").process.pid != hung
            ),
            30,
        )
        detected_s = time.monotonic() - started
        until(lambda: stack.ready("worker"), BACK_WITHIN_S)
        back_s = time.monotonic() - started
        outcome = job.get(blocking=True, timeout=30)
        ran_s = time.monotonic() - started
        assert huey.storage.queue_size() == 0
    finally:
        huey.storage = previous
    assert all(_normal(t) and t.seconds < 3 for t in turns), [replies_of(t) for t in turns]
    assert outcome["configured"] is False  # the pass ran (no webhook here: nothing to send)
    assert detected_s <= WORKER_HANG_DETECTED_WITHIN_S
    _no_turn_lost_or_doubled(stack, user, ["hi", NEEDS_ACTIONS])
    _report(
        "worker hung",
        detected_s=detected_s,
        back_s=back_s,
        queued_job_ran_s=ran_s,
        chat_s=max(t.seconds for t in turns),
    )


# -- an exchange that is slow or gone ------------------------------------------------------------------------


def _key_check(stack: FaultStack, scenario: str) -> Turn:
    """The demo user's Kraken key update up to the live check, with `scenario`'s keys."""
    stack.say(DEMO, "/restart")
    replies = httpx.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        json={"sender": DEMO, "message": "my kraken wallet says the api key is invalid"},
        timeout=30,
        trust_env=False,
    ).json()
    [form] = [r["custom"] for r in replies if isinstance(r.get("custom"), dict)][-1:]
    posted = httpx.post(
        form["submit_url"],
        json={"token": form["token"], "wallet_id": form["wallet_id"], **credentials_for("kraken", scenario)},
        timeout=10,
        trust_env=False,
    )
    assert posted.status_code == 201, posted.text
    reference = posted.json()["reference"]
    return stack.say(DEMO, f'/credentials_submitted{{"credential_ref": "{reference}"}}')


def test_a_slow_exchange_still_gets_the_user_an_answer_within_10_s(stack: FaultStack) -> None:
    turn = _key_check(stack, "slow")
    assert turn.texts and not turn.error, replies_of(turn)
    assert turn.seconds <= ANSWER_WITHIN_S
    _report("slow exchange", answer_s=turn.seconds, said=turn.texts[0][:60])


# -- the tracker database ----------------------------------------------------------------------------------


def test_a_locked_database_fails_the_turn_visibly_and_loses_nothing(stack: FaultStack) -> None:
    user = _user()
    assert _normal(stack.say(user, "hi"))
    release = stack.hold_tracker_lock(30)
    try:
        turn = stack.say(user, "hello again")
    finally:
        release()
    assert turn.texts == [NOT_SAVED], replies_of(turn)
    assert turn.seconds <= ANSWER_WITHIN_S
    resent = stack.say(user, "hello again")
    assert _normal(resent)
    # The failed turn is not half-stored; the resent one is stored once.
    _no_turn_lost_or_doubled(stack, user, ["hi", "hello again"])
    _report("tracker database locked", answer_s=turn.seconds)


def test_a_failed_turn_still_tells_the_user_to_revoke_a_pasted_key(stack: FaultStack) -> None:
    from channels.screening import NOTICE

    user = _user()
    secret = credentials_for("kraken", "valid")["api_secret"]
    release = stack.hold_tracker_lock(30)
    try:
        turn = stack.say(user, f"my kraken secret is {secret}")
    finally:
        release()
    # The revoke notice was said before the turn; only the turn's own answers give way to "not sent".
    assert turn.texts == [NOTICE, NOT_SAVED], replies_of(turn)


def test_a_short_lock_only_delays_the_turn(stack: FaultStack) -> None:
    user = _user()
    release = stack.hold_tracker_lock(1.0)
    try:
        turn = stack.say(user, "hi")
    finally:
        release()
    assert _normal(turn), replies_of(turn)
    _no_turn_lost_or_doubled(stack, user, ["hi"])
    _report("tracker database locked 1 s", answer_s=turn.seconds)


# -- oversized messages -----------------------------------------------------------------------------------


def _flood(
    stack: FaultStack, sender: str, senders: int, seconds: float, pause: float
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.flood", f"{stack.rasa_url}/webhooks/rest/webhook", sender,
         str(senders), str(seconds), str(pause)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _flooded(
    stack: FaultStack, senders: int, rounds: int, pause: float = 0.0
) -> tuple[float, dict[str, Any], list[float]]:
    """Another user's median extra wait while `senders` clients send 1 MB messages (`pause` s apart),
    measured in `rounds` rounds of quiet then flood, so that the machine's own load (other processes) weighs
    on both alike."""
    bystander, flooder = _user(), _user()
    stack.say(bystander, "hi")  # warm
    quiet: list[float] = []
    loud: list[float] = []
    summary: dict[str, Any] = {"sent": 0, "too_long": 0, "seconds": []}
    for _ in range(rounds):
        quiet += [stack.say(bystander, "hi").seconds for _ in range(4)]
        flood = _flood(stack, flooder, senders, 3.0, pause)
        time.sleep(1.0)  # the flood's process started and sending
        loud += [stack.say(bystander, "hi").seconds for _ in range(4)]
        out, _ = flood.communicate(timeout=120)
        result = json.loads(out)
        summary = {k: summary[k] + result[k] for k in summary}
    assert stack.user_messages(flooder) == []  # refused before Rasa: nothing stored, nothing redacted
    delay_ms = (statistics.median(loud) - statistics.median(quiet)) * 1000
    return delay_ms, summary, quiet


def test_one_users_1_mb_messages_cost_another_user_at_most_50_ms(stack: FaultStack) -> None:
    # One user pasting 1 MB five times a second: each of the other user's turns meets one being refused.
    delay_ms, flood, quiet = _flooded(stack, senders=1, rounds=5, pause=0.2)
    assert flood["sent"] > 0 and flood["too_long"] == flood["sent"], flood["sent"]
    assert delay_ms <= 50
    _report(
        "1 MB messages, one user, 5 a second",
        big_messages=flood["sent"],
        big_answer_s=statistics.median(flood["seconds"]),
        quiet_ms=statistics.median(quiet) * 1000,
        delay_ms=delay_ms,
    )


def test_a_burst_of_1_mb_messages_is_refused_and_other_users_still_answered(stack: FaultStack) -> None:
    delay_ms, flood, quiet = _flooded(stack, senders=20, rounds=2)
    assert flood["sent"] >= 40 and flood["too_long"] == flood["sent"]
    assert max(flood["seconds"]) <= ANSWER_WITHIN_S
    # Twenty 1 MB messages at every moment is a flood, not a chat: other users wait longer, but seconds less.
    assert delay_ms <= 1000
    _report(
        "1 MB messages, 20 senders at once",
        big_messages=flood["sent"],
        big_answer_s=statistics.median(flood["seconds"]),
        quiet_ms=statistics.median(quiet) * 1000,
        delay_ms=delay_ms,
    )


# -- Rasa itself (last: each costs a model load) ---------------------------------------------------------


def test_rasa_killed_the_user_is_answered_again_within_10_s_and_the_others_are_untouched(
    stack: FaultStack,
) -> None:
    rasa = stack.service("rasa")
    assert rasa.standby is not None and rasa.standby.loaded()  # the steady state (the `stack` fixture)
    others = {name: stack.pid(name) for name in ("sandbox", "actions", "worker", "web")}
    user = _user()
    assert _normal(stack.say(user, "hi"))
    assert rasa.standby.process is not None
    serving, waiting = _memory_mib(stack.pid("rasa")), _memory_mib(rasa.standby.process.pid)
    kill(stack.pid("rasa"))
    started = time.monotonic()
    # Sent at once: not delivered (the widget shows it reconnecting), or answered by the promoted standby.
    # Either way it is stored exactly when it was answered.
    during = stack.say(user, "are you there?", timeout=5)
    attempts = 0

    def answered_again() -> bool:
        nonlocal attempts
        attempts += 1
        return _normal(stack.say(user, f"hi again {attempts}", timeout=5))

    until(answered_again, 60, 0.1)
    back_s = time.monotonic() - started
    assert back_s <= RASA_BACK_WITHIN_S, back_s
    # The others never restarted and served throughout.
    assert {name: stack.pid(name) for name in others} == others
    assert all(stack.answers(name) for name in others)
    messages = stack.user_messages(user)
    answered_during = ["are you there?"] if _normal(during) else []
    assert messages == ["hi", *answered_during, f"hi again {attempts}"], messages
    _report(
        "rasa killed",
        back_s=back_s,
        during=replies_of(during)[:40],
        **{f"serving_{k}_mib": v for k, v in serving.items()},
        **{f"standby_{k}_mib": v for k, v in waiting.items()},
    )


def test_rasa_hung_is_killed_and_restarted(stack: FaultStack) -> None:
    hung = stack.pid("rasa")
    pause(hung)
    started = time.monotonic()
    until(lambda: stack.service("rasa").process is not None and stack.service("rasa").process.pid != hung, 60)
    killed_s = time.monotonic() - started
    user = _user()
    until(lambda: _normal(stack.say(user, "hi", timeout=5)), 180, 0.1)
    back_s = time.monotonic() - started
    assert killed_s <= ANSWER_WITHIN_S + 5 and back_s <= killed_s + RASA_BACK_WITHIN_S
    assert all(stack.answers(name) for name in ("sandbox", "actions", "worker", "web"))
    _report("rasa hung", detected_s=killed_s, back_s=back_s)


def test_rasa_killed_again_before_its_next_standby_has_loaded_is_back_once_it_has(stack: FaultStack) -> None:
    # The limit of the standby: it is one deep. Killed a second time while the next standby still loads, the
    # loading one is promoted and answers once loaded: about a whole start, later than 10 s.
    rasa = stack.service("rasa")
    first = stack.pid("rasa")
    kill(first)
    until(lambda: rasa.process is not None and rasa.process.pid != first and stack.ready("rasa"), 30, 0.05)
    assert rasa.process is not None and rasa.standby is not None
    promoted = rasa.process.pid
    # The next standby is started once the promoted one serves (and after the restart pause, 0.5 s).
    until(lambda: rasa.standby is not None and rasa.standby.process is not None, 30, 0.05)
    assert not rasa.standby.loaded()
    kill(promoted)
    started = time.monotonic()
    user = _user()
    until(lambda: _normal(stack.say(user, "hi", timeout=5)), 180, 0.1)
    back_s = time.monotonic() - started
    assert back_s <= RASA_WHOLE_START_WITHIN_S
    _report("rasa killed twice, the second time as its next standby starts", back_s=back_s)
