"""Proactive outreach (DESIGN §7, issue 7, docs/handoff.md "Proactive outreach"): when a resync fails because
the exchange refused the wallet's key, KeyMedic opens the conversation itself — "your Kraken key was refused,
want to fix it now?" — through Rasa's trigger_intent API, at most once per wallet and UTC day.

- `repository`: the `outreach` table (one row per wallet and day; the unique constraint is the rule).
- `service`: deciding (`claim_outreach`), choosing the conversation and speaking in it (`reach_out`), and the
  whole job (`run_outreach`), which `bot.jobs.outreach_after_sync` runs in the worker, never in an action.

Importing this package loads nothing else.
"""
