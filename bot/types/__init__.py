"""The shared types: what more than one layer speaks, so no layer has to import another's service for them.

- `credentials`: `Credentials`, what the user pasted (the live test, the store and the resync take it);
- `diagnosis`: `Item`, `Status`, `ItemOutcome`, `Unavailable`, `Diagnosis`, what a live test says;
- `confirmation`: which open checklist items the user's word may settle (a pure rule the store applies
  inside the swap's transaction);
- `history`: `HistorySource` and the transactions it yields, `HistoryError` and `KeyRejected`.

This package sits in the lowest layer (`.importlinter`), beside `bot.config`, `bot.redaction` and
`bot.secret`: it imports nothing of `bot` but `bot.secret`, does no I/O, and holds no service.
"""
