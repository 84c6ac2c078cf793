"""Developer tooling run with `python -m scripts.<name>` from the project root."""
