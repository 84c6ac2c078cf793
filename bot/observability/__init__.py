"""Operating KeyMedic: metrics, structured logs, health checks and progress (docs/operating.md).

Submodules are imported where used (`bot.observability.metrics`, `.logs`, `.health`, `.progress`, `.web`,
`.jobfigures`), so importing this package costs nothing.
"""
