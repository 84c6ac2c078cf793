"""Rasa's SQL tracker store table, as KeyMedic reads it (never writes it): `bot/` does not import Rasa.

The shape is Rasa 3.6's `SQLTrackerStore.SQLEvent` (rasa/core/tracker_store.py): one row per event, with the
event as JSON in `data` and its kind, time, intent and action (or slot name) in their own columns.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

__all__ = ["tracker_events"]

_metadata = MetaData()

tracker_events = Table(
    "events",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)
