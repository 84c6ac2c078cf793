"""Hand-off to human support (DESIGN §6, issue 7, docs/handoff.md).

- `services`: the ticket's use cases over a unit of work: the notification queued with the ticket
  (`ticket_opened`), the redacted transcript, what an agent does (reply/resume notes, removal approval,
  close), and `removal_approved(uow, conversation_id)`.
- `transcript`: turns from the conversation's events, every text through the `Redactor` (`bot.redaction`).
- `outbox`: delivering the outbox: claims, retries with exponential backoff, leases (`deliver_due`).
- `webhook`: the Slack Block Kit and generic JSON messages, and the HTTP sender.
- `rasa`: Rasa's HTTP API for agent replies and resume.
- `desk`: `HandoffDesk`, the async facade the Rasa actions use.

Importing this package loads nothing else; the submodules import httpx and the store.
"""
