"""The import graph of the product's top-level packages, and a check that it has no cycle.

    .venv/bin/python -m bench.import_graph

Prints each package's arrows (to the packages it imports) and exits 1 if any cycle exists.
Built with grimp, the graph library import-linter uses, so it sees every import, including
those inside functions.
"""

from __future__ import annotations

import sys

import grimp

PRODUCT = [
    "kernel",
    "transport",
    "schemas",
    "privacy",
    "connectors",
    "warehouse",
    "pipeline",
    "api",
    "relay",
    "peers",
    "neuron",
]


def package_graph() -> dict[str, set[str]]:
    """For each product package, the other product packages it imports."""
    graph = grimp.build_graph(*PRODUCT, cache_dir=None)
    arrows: dict[str, set[str]] = {p: set() for p in PRODUCT}
    for importer in PRODUCT:
        for imported in PRODUCT:
            if importer != imported and graph.direct_import_exists(
                importer=importer, imported=imported, as_packages=True
            ):
                arrows[importer].add(imported)
    return arrows


def find_cycle(arrows: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of packages (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(arrows[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in PRODUCT:
        if node not in state and (found := visit(node)):
            return found
    return None


def main() -> int:
    arrows = package_graph()
    for package in PRODUCT:
        print(f"{package:11} -> {', '.join(sorted(arrows[package])) or '(nothing of ours)'}")
    cycle = find_cycle(arrows)
    if cycle:
        print("cycle: " + " -> ".join(cycle))
        return 1
    print("no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
