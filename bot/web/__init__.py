"""The KeyMedic web app (DESIGN §6): secure credential intake now; the widget page and agent API later.

- `intake`: the framework-free service: one-time form tokens, body parsing, validation, storage.
- `form`: the self-contained HTML pages of the credential form (no framework, no external assets).
- `app`: the aiohttp application (`build_app`) that serves them.
- `cli`: `keymedic web`.

Importing this package is cheap; aiohttp loads only with `bot.web.app`.
"""
