"""The graphs by name: the table a session or a batch picks a graph from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vadetective.agent.core.catalog import GRAPHS, GraphName
from vadetective.agent.core.errors import ConfigError
from vadetective.graphs.chain import build_chain_graph
from vadetective.graphs.detective import build_detective_graph
from vadetective.graphs.nodes import Runtime

GraphBuilder = Callable[[Runtime, Any], Any]

#: Every graph, by the name ``Config.graph`` and ``--graph`` use.
GRAPH_BUILDERS: dict[GraphName, GraphBuilder] = {
    "detective": build_detective_graph,
    "chain": build_chain_graph,
}


def build_graph(name: str, runtime: Runtime, checkpointer: Any | None = None) -> Any:
    """Compile the graph called ``name`` around ``runtime``.

    Raises:
        ConfigError: When no graph has that name.
    """
    builder = GRAPH_BUILDERS.get(name)  # type: ignore[call-overload]
    if builder is None:
        raise ConfigError(f"unknown graph {name!r}: choose one of {', '.join(GRAPHS)}")
    return builder(runtime, checkpointer)
