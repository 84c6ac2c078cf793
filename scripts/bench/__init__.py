"""`make bench`: KeyMedic's speed and memory next to Rasa's starter bot (docs/bench.md).

`python -m scripts.bench` runs it. Modules, one job each: `plan` (sizes), `load` (scripted conversations),
`servers` (both bots through `bot.launcher`), `training` (the starter project and both training times),
`memory` (VmHWM over process trees), `stats`, `figures`, `report` (table and JSON), `machine`, `registry`
(extra measurements other parts add), `runner` (the order of a run). Importing this package starts nothing.
"""
