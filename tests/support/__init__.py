"""Code the tests share, kept out of the production packages (bot/, channels/), which the image installs.

- `store`: throw-away databases (`create_postgres_database`, `migrated_sqlite`, …) and test data;
- `sync`: fake exchange sources for the resync;
- `slack`: a stand-in for Slack's Web API and requests signed and shaped as Slack sends them;
- `waiting`: `eventually`, a condition polled with a deadline (never a fixed sleep);
- `clock`: clocks a test moves by hand (`FakeClock`, `FakeWallClock`).

The exchange sandbox stays in `bot.sandbox`: `make run` serves it.
"""
