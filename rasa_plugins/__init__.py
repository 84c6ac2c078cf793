"""Plug-ins that Rasa's own server loads by module path: KeyMedic's tracker and lock stores (`endpoints.yml`;
docs/bench.md says what each is for and what it measured) and the NLU step for two-part messages
(`config.yml`; docs/conversation.md); and the replacements of Rasa functions where Rasa has no hook, all
installed by `startup.install()` from the Rasa server's entry point `run.py` (docs/store.md, "Rasa plug-ins").
The only package besides `actions/` and `channels/` that imports Rasa; `bot/` stays framework-free.
"""
