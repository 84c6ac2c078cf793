"""What the conversation asks of KeyMedic, framework-free: the Rasa actions call `SupportDesk` and render its
answers with `bot.assistant.replies`; nothing here knows about trackers, slots or dispatchers."""

from bot.assistant.desk import (
    KeyCheck,
    KeyUpdated,
    SupportDesk,
    SyncReport,
    WalletView,
)

__all__ = ["SupportDesk", "WalletView", "KeyCheck", "KeyUpdated", "SyncReport"]
