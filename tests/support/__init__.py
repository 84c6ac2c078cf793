"""Code the tests share, kept out of the production packages (bot/, channels/), which the image installs.

- `store`: throw-away databases (`create_postgres_database`, `migrated_sqlite`, …) and test data;
- `sync`: fake exchange sources for the resync, and `snapshot`, what a user sees of a wallet;
- `slack`: a stand-in for Slack's Web API and requests signed and shaped as Slack sends them;
- `waiting`: `eventually`, a condition polled with a deadline (never a fixed sleep);
- `clock`: clocks a test moves by hand (`FakeClock`, `FakeWallClock`);
- `web`: an aiohttp app served in a thread for a `with` block (KeyMedic's web app, or a fake);
- `action_server`: `python -m actions.server` in its own process, waited for until live;
- `redis`: the local Redis, skipped when absent, and a key namespace per test;
- `tracker`: the project's domain and tracker databases as Rasa's `SQLTrackerStore` takes them.

The exchange sandbox stays in `bot.sandbox`: `make run` serves it.
"""
