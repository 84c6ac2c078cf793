"""Thin Rasa custom actions: read the tracker, call `bot`, turn the result into events and messages."""
