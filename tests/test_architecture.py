"""The layers as a contract, checked on every run: imports point downward only and never in a circle,
function-local imports included (`if TYPE_CHECKING:` blocks, which never run, excepted).

The layers, top to bottom (a module may import its own layer and the ones below):
    entry        the package's lazy table, cli/, hub
    experiments  train/, tune/ (the Ray trials and the Tune trainable among them)
    algorithms   one file per algorithm; the Algorithm
    learners     a Learner per trained policy
    games        one package per built-in game
    offline      logged data: reading, recording, off-policy estimates
    rollout      runners (single- and multi-agent, forked, Ray), storage, GAE / V-trace, episodes, the Ray
                 connection; multiagent/ (policy specs, the multi-agent builder, league, matches)
    export       ONNX and video files
    policies     policies/ (Policy, its capabilities, the trainable policies); nn/ (models, distributions,
                 flat optimizers, filters)
    envs         adapters, checker, registry (no torch)
    base         checkpoint files, references, limits, schedules, errors, callbacks, version
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import rlarena

ROOT = Path(rlarena.__file__).resolve().parent
LAYERS = [
    ("entry", ["rlarena", "rlarena.cli", "rlarena.hub", "rlarena.air"]),
    ("experiments", ["rlarena.train", "rlarena.tune"]),
    ("algorithms", ["rlarena.algorithms"]),
    ("learners", ["rlarena.learners"]),
    ("games", ["rlarena.games"]),
    ("offline", ["rlarena.offline"]),
    ("rollout", ["rlarena.rollout", "rlarena.multiagent"]),
    ("export", ["rlarena.export"]),
    ("policies", ["rlarena.policies", "rlarena.nn"]),
    ("envs", ["rlarena.envs"]),
    (
        "base",
        [
            "rlarena.checkpoint",
            "rlarena.refs",
            "rlarena.limits",
            "rlarena.errors",
            "rlarena.callbacks",
            "rlarena.schedules",
            "rlarena._version",
        ],
    ),
]


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the rlarena modules it imports (`from package import module` counts as the module)."""
    mods = modules()

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        skipped = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in mods else base)
            for target in targets:
                if target.startswith("rlarena"):
                    found = known(target)
                    if found is not None and found != name:
                        graph[name].add(found)
    return graph


def layer(module: str) -> int:
    best = (-1, -1)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[1]:
                best = (index, len(prefix))
    assert best[0] >= 0, f"{module} is in no layer: add it to LAYERS"
    return best[0]


def test_every_module_is_in_a_layer():
    for module in modules():
        layer(module)


def test_imports_point_down_only():
    upward = sorted(
        f"{a} ({LAYERS[layer(a)][0]}) imports {b} ({LAYERS[layer(b)][0]})"
        for a, targets in import_graph().items()
        for b in targets
        if layer(b) < layer(a)
    )
    assert not upward, "imports up a layer:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(modules()):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_the_library_never_imports_the_command_line():
    graph = import_graph()
    offenders = sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        if not a.startswith("rlarena.cli")
        for b in targets
        if b.startswith("rlarena.cli")
    )
    assert not offenders, offenders
