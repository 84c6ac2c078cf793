"""The agent console (issue 16): support agents sign in at `/agent` and work the hand-off queue.

`routes` holds the HTTP handlers, `pages` the server-rendered HTML, `static/` the one small script (polling
with ETags for the live queue and transcript; no build step, no framework). Every action goes through the same
services as the agent API (`bot.handoff.services`), recorded under the signed-in agent.
"""
