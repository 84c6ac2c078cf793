"""Credential store: users, wallets, encrypted credentials, transactions with manual edits kept apart, sync
runs, tickets and the notification outbox (DESIGN §5, docs/store.md).

`model` (dataclasses), `orm` (tables and mapping), `repository`, `unit_of_work`, `services`, `crypto`,
`migrate` (Alembic). This package imports nothing on its own, so the CLI modules in it stay cheap to import.
"""
