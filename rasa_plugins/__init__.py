"""Plug-ins that Rasa's own server loads by module path (`endpoints.yml`): KeyMedic's tracker store, and the
one speed fix it installs in Rasa's process. The only package besides `actions/` and `channels/` that imports
Rasa; `bot/` stays framework-free. docs/bench.md says what each one is for and what it measured.
"""
