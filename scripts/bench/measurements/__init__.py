"""Extra measurements of `make bench`, one module per part of KeyMedic; see `scripts/bench/registry.py`.

Every module here is imported at the start of a run and registers itself with `@measurement("name")`.
"""
