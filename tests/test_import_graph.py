"""The package's import graph: no cycles, no import from a lower layer up into a higher one, and
imports at module top except a short list of heavy optional dependencies (docs/design.md)."""

import ast
from pathlib import Path

import mmftraj

ROOT = Path(mmftraj.__file__).parent
# Lower number = lower layer. A module may import its own layer or lower ones only.
LAYERS = {
    "errors": 0, "io": 0, "config": 0, "resources": 0, "cli_errors": 0, "run_folders": 1, "checkpoint": 1,
    "core": 1, "signal": 1, "runtime": 1, "progress": 1, "interrupts": 1, "models": 2, "envs": 2, "data": 3,
    "training": 4, "evaluation": 4, "planning": 5,
    "tasks": 6, "runs": 7, "run_request": 7, "experiments": 8, "cli": 9, "__main__": 10, "__init__": 0,
}
# Imports allowed inside functions: heavy or optional dependencies a plain `import mmftraj...`
# should not pay for or need.
LAZY = {
    "matplotlib",  # plots only; its import costs ~1 s
    "PIL",  # image files (optional [image] use)
    "minari",  # the optional [minari] extra
    "gymnasium_robotics",  # PointMaze (optional [pointmaze] extra)
    "gym_pusht",  # Push-T's environment (optional [pusht] extra)
    "zarr",  # Diffusion Policy's recordings (optional [pusht] extra)
    "sklearn",  # the digits data set (optional [image] extra)
    "numpy",  # numpy 1/2 compatibility shim for pickled CIFAR batches (data/cifar.py)
    "mmftraj",  # only in docstrings' examples (not executed)
}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        yield ".".join(("mmftraj", *rel.parts)).removesuffix(".__init__"), path


def _imports(name: str, path: Path, top_only: bool):
    """(target module, lineno, at module top) for every mmftraj import of one module."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        if top_only and id(node) not in top:
            continue
        yield targets, node.lineno, id(node) in top


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_runs_from_a_lower_layer_up():
    upward = []
    for name, path in _modules():
        for targets, line, _ in _imports(name, path, top_only=False):
            mod = targets[0]
            if not mod.startswith("mmftraj.") or _unit(mod) not in LAYERS:
                continue
            if LAYERS[_unit(mod)] > LAYERS[_unit(name)]:
                upward.append(f"{path.relative_to(ROOT.parent)}:{line} imports {mod}")
    assert not upward, "\n".join(upward)


def test_the_module_graph_has_no_cycle():
    known = {name for name, _ in _modules()}
    graph = {}
    for name, path in _modules():
        deps = set()
        for targets, _, _ in _imports(name, path, top_only=True):
            # `from pkg import sub` depends on the submodule; `from pkg import name` on pkg itself
            subs = {t for t in targets[1:] if t in known}
            deps |= {t for t in (subs or {targets[0]}) if t in known and t != name}
        graph[name] = deps
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for dep in graph[node]:
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_imports_sit_at_module_top_except_heavy_optional_ones():
    inside = []
    for name, path in _modules():
        for targets, line, at_top in _imports(name, path, top_only=False):
            if not at_top and targets[0].split(".")[0] not in LAZY:
                inside.append(f"{path.relative_to(ROOT.parent)}:{line} imports {targets[0]} inside a function")
    assert not inside, "\n".join(inside)


def test_the_checks_can_fail(tmp_path):
    """The layer rule, applied to a module written to break it, reports it."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ..tasks import maze2d\n")
    found = list(_imports("mmftraj.core.bad", bad, top_only=False))
    assert found and found[0][0][0] == "mmftraj.tasks" and LAYERS["tasks"] > LAYERS["core"]
    assert found[0][2] is False  # inside a function
