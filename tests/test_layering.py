"""The shape of the package (DESIGN.md §1, docs/architecture.md): layers that import only downwards, no
import circles. Read from the source with `ast`, not by importing, so imports inside functions count too.

Rules:
1. a module imports only modules of its own layer or of the layers below it (so nothing below jobs/
   imports jobs/, api.py or cli/);
2. tui/ is picked at the top: only jobs/, api.py and cli/ import it (and tui/ itself);
3. cli/ imports no diffusion/ or generation internals, and no torch;
4. data/ imports no models/;
5. no import circles between modules.

KNOWN lists what still breaks a rule while other work is under way; the test fails on any violation that is
not listed, and on a listed one that no longer occurs (so the list only shrinks).
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from pathlib import Path

import diffcli

PACKAGE = Path(diffcli.__file__).resolve().parent
ROOT = "diffcli"

# Top to bottom: each entry names a layer and the module prefixes (below diffcli.) that belong to it.
LAYERS = [
    ("cli", ("cli", "__main__")),
    ("api", ("api",)),
    ("jobs", ("jobs",)),
    ("work", ("generation", "illusions", "training", "scoring")),
    ("sources", ("models", "data")),
    ("engine", ("diffusion",)),
    ("output", ("io", "tui")),
    ("base", ("errors", "checks", "params", "schema", "console", "device", "signals", "progress", "home")),
]
PICKED_AT_THE_TOP = ("tui",)  # imported only by these layers, and by itself:
TOP = ("cli", "api", "jobs")
CLI_FORBIDDEN = ("diffcli.diffusion", "diffcli.generation", "diffcli.illusions", "torch")
# The engine's public, torch-free list of sampler and view names: the CLI's choices and help read it.
CLI_ALLOWED = ("diffcli.diffusion.names",)

# Violations another change removes; each is (rule, module, imported module) or ("circle", members).
KNOWN: set[tuple[str, ...]] = set()


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """Every module `name` imports, anywhere in the file (top level, functions, TYPE_CHECKING blocks),
    resolved to a module of the package (`from diffcli.x import y` is diffcli.x.y when y is a module, else
    diffcli.x); other packages by their top-level name."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, one level up per extra dot
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base


def _graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports. The package root (diffcli/__init__.py: the version and
    the lazy facade over api.py) is left out: every module imports it implicitly, before itself."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        if name == ROOT:
            continue
        imports = set(_imported(name, path, modules))
        graph[name] = {m for m in imports if m.startswith(ROOT + ".")}
        graph[name] |= {m.split(".")[0] for m in imports if m != ROOT and not m.startswith(ROOT + ".")}
    return graph


def _layer(module: str) -> int:
    first = module.split(".")[1]
    for rank, (_, prefixes) in enumerate(LAYERS):
        if first in prefixes:
            return rank
    raise AssertionError(f"{module} is in no layer: add its name to LAYERS in tests/test_layering.py")


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    circles.append(sorted(members))
    return circles


def violations(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """Every broken rule, as (rule, module, imported module) or ("circle", members...)."""
    found: set[tuple[str, ...]] = set()
    top = {rank for rank, (name, _) in enumerate(LAYERS) if name in TOP}
    for module, imports in graph.items():
        rank = _layer(module)
        section = module.split(".")[1]
        for target in imports:
            if not target.startswith(ROOT + "."):
                if section == "cli" and target in CLI_FORBIDDEN:
                    found.add(("cli imports internals", module, target))
                continue
            target_section = target.split(".")[1]
            if _layer(target) < rank:
                found.add(("imports upwards", module, target))
            if target_section in PICKED_AT_THE_TOP and section != target_section and rank not in top:
                found.add(("imports tui below jobs", module, target))
            if section == "cli" and target.startswith(CLI_FORBIDDEN) and target not in CLI_ALLOWED:
                found.add(("cli imports internals", module, target))
            if section == "data" and target_section == "models":
                found.add(("data imports models", module, target))
    found |= {("circle", *members) for members in _circles(graph)}
    return found


def test_the_layers_hold():
    found = violations(_graph())
    new = sorted(found - KNOWN)
    gone = sorted(KNOWN - found)
    assert not new, "layering broken (see docs/architecture.md):\n" + "\n".join("  " + ": ".join(v) for v in new)
    listed = "\n".join("  " + ": ".join(v) for v in gone)
    assert not gone, "fixed, so remove from KNOWN in tests/test_layering.py:\n" + listed
    if found:  # shown in pytest's warnings summary until KNOWN is empty
        remaining = "; ".join(" ".join(v) for v in sorted(found))
        warnings.warn(f"known layering exceptions remain: {remaining}", stacklevel=1)


def test_the_check_sees_what_it_names(tmp_path: Path):
    """Each rule catches a made-up breach, including imports inside functions."""
    graph = {
        "diffcli.training.loop": {"diffcli.jobs.train"},  # below jobs/ importing jobs/
        "diffcli.io.show": {"diffcli.tui.panel"},  # below jobs/ importing tui/
        "diffcli.tui.panel": {"diffcli.progress"},
        "diffcli.jobs.train": {"diffcli.tui.panel"},  # allowed
        "diffcli.cli.sample": {"diffcli.diffusion.samplers", "torch"},
        "diffcli.data.mnist": {"diffcli.models.config"},
        "diffcli.models.config": set(),
        "diffcli.scoring.a": {"diffcli.scoring.b"},
        "diffcli.scoring.b": {"diffcli.scoring.a"},
        "diffcli.progress": set(),
        "diffcli.diffusion.samplers": set(),
    }
    assert violations(graph) == {
        ("imports upwards", "diffcli.training.loop", "diffcli.jobs.train"),
        ("imports tui below jobs", "diffcli.io.show", "diffcli.tui.panel"),
        ("cli imports internals", "diffcli.cli.sample", "diffcli.diffusion.samplers"),
        ("cli imports internals", "diffcli.cli.sample", "torch"),
        ("data imports models", "diffcli.data.mnist", "diffcli.models.config"),
        ("circle", "diffcli.scoring.a", "diffcli.scoring.b"),
    }
    probe = tmp_path / "probe.py"
    probe.write_text("def later():\n    from diffcli.jobs import train\n", encoding="utf-8")
    assert set(_imported("diffcli.training.probe", probe, {"diffcli.jobs.train": probe})) == {"diffcli.jobs.train"}
