"""A standby Rasa (`rasa_plugins.standby`) waits for its own promotion file, then starts serving: the file is
named by its pid, so another process's file, or one left from an earlier standby, never promotes it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bot.standby import PROMOTED_LINE, READY_LINE, promote_file
from rasa_plugins import standby


def test_a_standby_waits_for_its_own_promotion_file_then_starts_what_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[str] = []
    monkeypatch.setattr(standby, "on_promoted", [lambda: started.append("metrics")])
    promote_file(tmp_path, os.getpid() + 1).touch()  # another process's: not this one's promotion

    async def scenario() -> bool:
        waiting = asyncio.create_task(standby.wait_until_promoted(tmp_path, poll_s=0.01))
        await asyncio.sleep(0.2)
        still_waiting = not waiting.done()
        promote_file(tmp_path, os.getpid()).touch()
        await asyncio.wait_for(waiting, 5)
        return still_waiting

    assert asyncio.run(scenario())
    assert started == ["metrics"]
    assert not promote_file(tmp_path, os.getpid()).exists()  # taken, so it cannot promote again
    assert promote_file(tmp_path, os.getpid() + 1).exists()
    err = capsys.readouterr().err
    assert err.index(READY_LINE) < err.index(PROMOTED_LINE)


def test_outside_a_standby_rasas_agent_load_is_all_that_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYMEDIC_STANDBY_PROMOTE_DIR", raising=False)
    loaded = object()

    async def rasa_load(*args: object) -> object:
        return loaded

    monkeypatch.setattr(standby, "rasa_load_agent_on_start", rasa_load)
    agent = asyncio.run(standby.load_agent_then_wait_if_standby("model", None, None, object(), None))
    assert agent is loaded
