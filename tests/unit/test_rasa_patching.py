"""`rasa_plugins.patching` replaces exactly the function it was written against, once."""

from __future__ import annotations

import logging

import pytest

from rasa_plugins import patching


class Owner:
    def answer(self) -> int:
        return 1

    @staticmethod
    def lookup(name: str) -> str:
        return name


def faster_answer(self: Owner) -> int:
    return 2


def faster_lookup(name: str) -> str:
    return name.upper()


def test_a_known_method_is_replaced_once() -> None:
    class Mine(Owner):
        answer = Owner.answer  # the original, as found on a class of that name

    Mine.__name__ = "Owner"
    assert patching.replace(Mine, "answer", faster_answer)
    assert patching.replace(Mine, "answer", faster_answer)  # again: nothing more to do
    assert Mine().answer() == 2 and patching.replaced(Mine, "answer", faster_answer)


def test_a_static_method_stays_static() -> None:
    class Mine:
        lookup = Owner.__dict__["lookup"]

    Mine.__name__ = "Owner"
    assert patching.replace(Mine, "lookup", faster_lookup, static=True)
    assert Mine.lookup("x") == "X" and Mine().lookup("y") == "Y"


def test_a_function_that_is_not_the_expected_one_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    class Changed:
        def answer(self) -> int:  # qualname Changed.answer... renamed below, so it no longer matches
            return 1

    Changed.__name__ = "Owner"
    with caplog.at_level(logging.WARNING):
        assert not patching.replace(Changed, "answer", faster_answer)
    assert Changed().answer() == 1
    assert "Owner.answer is not the one expected" in caplog.text
