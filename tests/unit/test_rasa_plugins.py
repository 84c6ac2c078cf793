"""KeyMedic's replacements of Rasa functions fit the installed Rasa, and are installed from one place.

`rasa_plugins.startup.install` is the only caller of `Patch.apply`; a Patch applies only over the original
whose source it was written against (its SHA-256), so an upgraded Rasa fails here first.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import version

import pytest

import rasa_plugins
from rasa_plugins import past_states, startup, tracker_store
from rasa_plugins.patching import RASA_VERSION, Patch, RasaChanged, source_sha256


def test_the_installed_rasa_is_the_one_the_plugins_were_written_for() -> None:
    assert version("rasa") == RASA_VERSION


@pytest.mark.parametrize("patch", startup.PATCHES, ids=lambda patch: patch.label)
def test_each_replaced_rasa_function_is_unchanged_since_its_replacement_was_written(patch: Patch) -> None:
    assert source_sha256(patch.original()) == patch.original_sha256, (
        f"{patch.label} changed: read Rasa's new source, update the replacement, then its hash"
    )


@pytest.mark.parametrize(
    ("owner", "name"), sorted(tracker_store.RELIED_ON, key=str), ids=lambda v: getattr(v, "__name__", v)
)
def test_each_rasa_function_the_windowed_store_overrides_is_unchanged(owner: type, name: str) -> None:
    assert source_sha256(owner.__dict__[name]) == tracker_store.RELIED_ON[(owner, name)], (
        f"Rasa's {owner.__name__}.{name} changed: check rasa_plugins/tracker_store.py against it"
    )


@pytest.mark.parametrize(
    ("owner", "name"), sorted(past_states.RELIED_ON, key=str), ids=lambda v: getattr(v, "__name__", v)
)
def test_each_rasa_function_the_kept_past_states_follow_is_unchanged(owner: type, name: str) -> None:
    assert source_sha256(owner.__dict__[name]) == past_states.RELIED_ON[(owner, name)], (
        f"Rasa's {owner.__name__}.{name} changed: check rasa_plugins/past_states.py `_both_kinds` against it"
    )


def test_every_patch_in_the_package_is_installed_by_startup() -> None:
    found = set()
    for module_info in pkgutil.iter_modules(rasa_plugins.__path__):
        module = importlib.import_module(f"rasa_plugins.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, tuple) and value and all(isinstance(item, Patch) for item in value):
                found.update(value)
    assert found == set(startup.PATCHES)


def test_install_puts_every_replacement_in_place() -> None:
    startup.install()
    startup.install()  # again: nothing more to do
    assert startup.installed()
    for patch in startup.PATCHES:
        assert patch.current() is patch.replacement
        assert patch.original() is not patch.replacement


# A stand-in for a Rasa class, and a Rasa release that kept the names and changed a body.


class Owner:
    def answer(self) -> int:
        return 1

    @staticmethod
    def lookup(name: str) -> str:
        return name


def _released() -> type:
    class Owner:  # the same qualified names as above: the old guard compared those and would have patched
        def answer(self) -> int:
            return 1 + 0  # the body changed

        @staticmethod
        def lookup(name: str) -> str:
            return name

    return Owner


def faster_answer(self: Owner) -> int:
    return 2


def faster_lookup(name: str) -> str:
    return name.upper()


ANSWER_SHA = source_sha256(Owner.answer)
LOOKUP_SHA = source_sha256(Owner.__dict__["lookup"].__func__)


def _fresh() -> type:
    class Mine(Owner):
        answer = Owner.answer
        lookup = Owner.__dict__["lookup"]

    return Mine


def test_a_patch_applies_over_the_original_it_was_written_for_once() -> None:
    mine = _fresh()
    patch = Patch(mine, "answer", faster_answer, ANSWER_SHA)
    patch.apply()
    patch.apply()
    assert mine().answer() == 2 and patch.applied() and patch.original() is Owner.answer


def test_a_static_method_stays_static() -> None:
    mine = _fresh()
    Patch(mine, "lookup", faster_lookup, LOOKUP_SHA, static=True).apply()
    assert mine.lookup("x") == "X" and mine().lookup("y") == "Y"


def test_a_changed_body_under_the_same_name_is_refused() -> None:
    released = _released()
    assert released.answer.__qualname__.endswith("Owner.answer")
    patch = Patch(released, "answer", faster_answer, ANSWER_SHA)
    with pytest.raises(RasaChanged, match="answer"):
        patch.apply()
    assert released().answer() == 1 and not patch.applied()


def test_install_puts_in_all_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    mine, released = _fresh(), _released()
    fits = Patch(mine, "answer", faster_answer, ANSWER_SHA)
    misfit = Patch(released, "lookup", faster_lookup, LOOKUP_SHA + "0", static=True)
    monkeypatch.setattr(startup, "PATCHES", (fits, misfit))
    with pytest.raises(RasaChanged, match="lookup"):
        startup.install()
    assert not fits.applied() and mine().answer() == 1
