"""The exchange sandbox: a local HTTP server that speaks seven exchanges' real signing schemes
and error codes.

Importing this package is cheap; the server lives in `bot.sandbox.server`, the scenario keys in
`bot.sandbox.scenarios`, one module per exchange beside them. See docs/sandbox.md.
"""
