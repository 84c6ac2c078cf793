"""Console passwords (`bot.store.agent_signin`): scrypt hashes that verify only the right password, carry
their own parameters, and fail closed on anything malformed; CSRF tokens bound to their session."""

from __future__ import annotations

import pytest

from bot.store import agent_signin


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_signin, "_N", 2**10)


def test_a_hash_verifies_the_password_and_nothing_else() -> None:
    stored = agent_signin.hash_password("correct horse battery staple")
    assert agent_signin.verify_password("correct horse battery staple", stored)
    assert not agent_signin.verify_password("correct horse battery stapl", stored)
    assert not agent_signin.verify_password("", stored)
    assert "correct horse" not in stored


def test_each_hash_has_its_own_salt_and_names_its_parameters() -> None:
    first = agent_signin.hash_password("the same password")
    second = agent_signin.hash_password("the same password")
    assert first != second
    scheme, n, r, p, _salt, _digest = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**10), "8", "1")


def test_a_hash_made_with_other_parameters_still_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = agent_signin.hash_password("raised cost later")
    monkeypatch.setattr(agent_signin, "_N", 2**11)  # the cost grows; old hashes keep working
    assert agent_signin.verify_password("raised cost later", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "bcrypt$1$2$3$AAAA$AAAA",
        "scrypt$x$8$1$AAAA$AAAA",
        "scrypt$1024$8$1$@@@$AAAA",
        "scrypt$3$8$1$AA$AA",
    ],
)
def test_a_malformed_hash_never_verifies(stored: str) -> None:
    assert not agent_signin.verify_password("anything", stored)


def test_the_dummy_hash_used_for_unknown_emails_is_well_formed_and_matches_nothing() -> None:
    assert not agent_signin.verify_password("", agent_signin._DUMMY_HASH)
    assert len(agent_signin._DUMMY_HASH.split("$")) == 6


def test_a_csrf_token_belongs_to_its_session() -> None:
    one, other = agent_signin.csrf_token("session-one"), agent_signin.csrf_token("session-two")
    assert one == agent_signin.csrf_token("session-one") and one != other
    assert "session-one" not in one
