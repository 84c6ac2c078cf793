"""Run Rasa's prediction graph in a precomputed order instead of asking dask to plan it on every call.

Rasa 3.6 runs its graph (`DaskGraphRunner.run`, rasa/engine/runner/dask.py) with `dask.get` for every parse
and every action prediction: each call builds a fresh dask graph, and dask orders it (`dask.order`,
`reverse_dict`) before running a dozen nodes one after another in the same thread. Profiled under
`make bench`'s load (py-spy on the Rasa server), that planning was about a tenth of the server's busy CPU,
for a plan that never changes between calls.

`PATCHES` (installed by `rasa_plugins.startup.install`) puts `run` below in its place: it computes the
plan once per set of targets and inputs (the nodes the targets need, dependencies first) and then calls the
same `GraphNode`s with the same arguments dask would pass them: each node gets the `(name, output)` results
of the nodes it needs, an input gets `(input name, value)`, and a need that is neither stays the plain
string, as in dask. The result is the `{target: output}` dict Rasa's own `run` returns, and a
`RuntimeError` becomes `GraphRunError` as there.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import GraphSchema
from rasa.engine.runner.dask import DaskGraphRunner

from rasa_plugins import patching

__all__ = ["PATCHES", "run", "execution_order"]

_ORIGINAL = DaskGraphRunner.run
_PLAN_ATTRIBUTE = "_keymedic_plans"
_PlanKey = tuple[tuple[str, ...], frozenset[str]]


def execution_order(schema: GraphSchema, targets: list[str], inputs: frozenset[str]) -> list[str]:
    """The schema's nodes that `targets` need, each after the nodes it needs; names in `inputs` are given,
    so neither they nor what only they need are run (dask's graph has the input in the node's place)."""
    order: list[str] = []
    state: dict[str, bool] = {}  # False while visiting, True when placed

    def visit(name: str) -> None:
        if name in inputs or name not in schema.nodes or state.get(name):
            return
        if name in state:
            raise GraphRunError(f"the graph has a cycle through '{name}'")
        state[name] = False
        for need in schema.nodes[name].needs.values():
            visit(need)
        state[name] = True
        order.append(name)

    for target in targets:
        visit(target)
    return order


def run(
    self: DaskGraphRunner, inputs: dict[str, Any] | None = None, targets: list[str] | None = None
) -> dict[str, Any]:
    """Rasa's `DaskGraphRunner.run`, without dask's per-call planning."""
    run_targets = list(targets) if targets else list(self._graph_schema.target_names)
    given = dict(inputs or {})
    for input_value in given.values():
        if isinstance(input_value, str) and input_value in self._graph_schema.nodes:
            # Rasa's own check (DaskGraphRunner._add_inputs_to_graph).
            raise GraphRunError(
                f"Input value '{input_value}' clashes with a node name. Make sure that none of the input "
                f"names passed to the `run` method are the same as node names in the graph schema."
            )
    plans: dict[_PlanKey, list[str]] = self.__dict__.setdefault(_PLAN_ATTRIBUTE, {})
    key = (tuple(run_targets), frozenset(given))
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = execution_order(self._graph_schema, run_targets, key[1])

    results: dict[str, Any] = {name: (name, value) for name, value in given.items()}
    nodes = self._graph_schema.nodes
    try:
        for name in plan:
            arguments = [results.get(need, need) for need in nodes[name].needs.values()]
            results[name] = self._instantiated_nodes[name](*arguments)
    except RuntimeError as error:
        raise GraphRunError("Error running runner.") from error
    return dict(results.get(target, target) for target in run_targets)


PATCHES = (
    patching.Patch(
        DaskGraphRunner,
        "run",
        run,
        "45f0f52f574f3aa9546a552bf671183e171092c18b66e97f5771a7fa295de37e",
    ),
)
