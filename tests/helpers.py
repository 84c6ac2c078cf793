"""Small helpers shared by tests (fixtures that start servers live in the conftest of their folder)."""

from __future__ import annotations

from bot.launcher import free_port

__all__ = ["free_port"]
