"""Plug-ins that Rasa's own server loads by module path: KeyMedic's tracker store and the speed fixes it
installs in Rasa's process (`endpoints.yml`; `fast_load` by the entry point `run`; docs/bench.md says what
each is for and what it measured), and
the NLU step for two-part messages (`config.yml`; docs/conversation.md). The only package besides `actions/`
and `channels/` that imports Rasa; `bot/` stays framework-free.
"""
