"""Agents and their API credentials (`bot.store.agents`, `keymedic agent`), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.config import load_settings
from bot.demo import prepare_database
from bot.launcher import local_agent_token
from bot.store import agent_signin, agents, orm
from bot.store.db import create_database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork, UnitOfWorkFactory

pytestmark = pytest.mark.integration


def test_a_new_agent_gets_a_long_random_credential_stored_only_as_its_hash(uow: SqlAlchemyUnitOfWork) -> None:
    agent, token = agents.add_agent(uow, email=" Sam@Support.example ", name="Sam")
    assert (agent.email, agent.name, agent.kind, agent.disabled) == (
        "sam@support.example",
        "Sam",
        "human",
        False,
    )
    assert token.startswith("kma_") and len(token) >= 4 + 43  # 32 random bytes, URL-safe base64
    with uow:
        stored = uow.session.execute(select(orm.agent_credentials.c.token_hash)).scalars().all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert agents.authenticate(uow, token) == agent
    assert agents.authenticate(uow, token + "x") is None
    assert agents.authenticate(uow, "") is None


def test_an_email_is_one_agent_and_bad_input_is_refused(uow: SqlAlchemyUnitOfWork) -> None:
    agents.add_agent(uow, email="sam@support.example", name="Sam")
    with pytest.raises(agents.AgentExists):
        agents.add_agent(uow, email="SAM@support.example", name="Another Sam")
    for email, name, kind in [("no-at-sign", "X", "human"), ("x@y", "", "human"), ("x@y", "X", "robot")]:
        with pytest.raises(agents.InvalidAgent):
            agents.add_agent(uow, email=email, name=name, kind=kind)
    assert [a.email for a in agents.list_agents(uow)] == ["sam@support.example"]


def test_disabling_an_agent_revokes_every_credential_and_a_restart_does_not_enable_it(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    _, first = agents.add_agent(uow, email="bot@helpdesk.example", name="Helpdesk", kind=agents.AUTOMATION)
    second = agents.issue_credential(uow, "bot@helpdesk.example")
    assert agents.authenticate(uow, first) is None  # a rotation revokes the earlier credential
    assert agents.authenticate(uow, second) is not None
    assert agents.disable_agent(uow, "bot@helpdesk.example") is True
    assert agents.disable_agent(uow, "bot@helpdesk.example") is False
    assert agents.authenticate(uow, second) is None
    # A start-up re-asserting a credential (the local run's, the environment's) leaves a disabled agent so.
    token = "x" * 40
    agents.ensure_agent_credential(
        uow, email="bot@helpdesk.example", name="Helpdesk", kind=agents.AUTOMATION, token=token, label="env"
    )
    assert agents.authenticate(uow, token) is None
    with pytest.raises(agents.AgentNotFound):
        agents.disable_agent(uow, "nobody@example.com")


def test_the_environment_credential_must_be_32_bytes_and_goes_when_the_variable_goes(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    with pytest.raises(agents.InvalidAgent):
        agents.sync_env_credential(uow, "too-short")
    token = "an-automation-token-of-forty-bytes-long!"
    automation = agents.sync_env_credential(uow, token)
    assert automation is not None and automation.kind == agents.AUTOMATION
    assert agents.sync_env_credential(uow, token) == automation  # idempotent: one agent, one credential
    assert agents.authenticate(uow, token, env_token=token) == automation
    # Gone from the environment (or replaced there): refused at once, before any start-up revokes the row.
    assert agents.authenticate(uow, token, env_token="") is None
    assert agents.authenticate(uow, token, env_token="another-automation-token-of-forty-bytes") is None
    assert agents.sync_env_credential(uow, "") is None
    assert agents.authenticate(uow, token, env_token=token) is None  # and revoked for good


def test_the_cli_prints_the_credential_once_and_lists_and_disables_agents(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", database_url)
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    assert main(["agent", "add", "kim@support.example", "--name", "Kim"]) == 0
    printed = capsys.readouterr().out
    token = printed.strip().splitlines()[-1]
    # A person also gets a one-time link to set a console password; its token rides in the fragment.
    link = next(line for line in printed.splitlines() if "/agent/set-password#token=" in line)
    assert main(["agent", "add", "ci@support.example", "--name", "CI", "--automation"]) == 0
    assert main(["agent", "add", "kim@support.example", "--name", "Kim"]) == 2  # exists already
    capsys.readouterr()
    assert main(["agent", "list"]) == 0
    listing = capsys.readouterr().out
    assert "kim@support.example\tKim\thuman\tenabled" in listing
    assert "ci@support.example\tCI\tautomation\tenabled" in listing
    assert token not in listing
    factory = UnitOfWorkFactory(load_settings())
    try:
        assert agents.authenticate(factory(), token) is not None
        link_token = link.rsplit("=", 1)[1]
        kim = agent_signin.set_password(factory(), link_token, "a long enough password")
        assert kim.email == "kim@support.example"
        assert main(["agent", "disable", "kim@support.example"]) == 0
        assert agents.authenticate(factory(), token) is None
    finally:
        factory.database.dispose()


def test_the_local_run_makes_the_local_operator_with_the_credential_in_var_keys(tmp_path: Path) -> None:
    settings = replace(load_settings(), var_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'k.db'}")
    prepare_database(settings)
    prepare_database(settings)  # every start re-asserts it; still one agent, one live credential
    token = local_agent_token(settings)
    assert (tmp_path / "keys" / "agent.token").stat().st_mode & 0o077 == 0
    database = create_database(settings.database_url)
    try:
        factory = UnitOfWorkFactory(settings, database)
        operator = agents.authenticate(factory(), token)
        assert operator is not None and operator.email == agents.LOCAL_OPERATOR_EMAIL
        assert [a.email for a in agents.list_agents(factory())] == [agents.LOCAL_OPERATOR_EMAIL]
    finally:
        database.dispose()
