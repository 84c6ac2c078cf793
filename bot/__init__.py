"""KeyMedic's framework-free core: nothing under `bot/` imports Rasa (see DESIGN §2)."""
