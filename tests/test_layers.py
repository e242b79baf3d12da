"""Data flows one way: no module under gplinker/ imports a module on a higher floor (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gplinker"

# Floor of each module or package (a package's floor covers its modules); the same table is in
# docs/architecture.md. A module may import modules of its own floor or below, never above.
FLOORS = {
    "gplinker.errors": 0, "gplinker.head_spec": 0, "gplinker.probability": 0, "gplinker.model_format": 0,
    "gplinker.config": 0, "gplinker.run_info": 0, "gplinker.console": 0, "gplinker.atomic_files": 0,
    "gplinker.manifest": 0, "gplinker.locks": 0,
    "gplinker.data": 1,
    "gplinker.metrics": 2, "gplinker.modeling": 2, "gplinker.devices": 2, "gplinker.distributed": 2,
    "gplinker.onnx_runtime": 2, "gplinker.submission": 2,
    "gplinker.tasks": 3,
    "gplinker.predict": 4, "gplinker.training": 4,
    "gplinker.export": 5, "gplinker.pipeline": 5,
    "gplinker.commands": 6, "gplinker.serve": 6, "gplinker.report": 6,
    "gplinker.cli": 7, "gplinker.demo": 7, "gplinker.__main__": 7, "gplinker": 7,
}


def floor_of(module: str) -> int | None:
    """The floor of the longest FLOORS key that is `module` or a package above it."""
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        name = ".".join(parts[:k])
        if name in FLOORS:
            return FLOORS[name]
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def gplinker_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every gplinker import in a file, function-level imports included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "gplinker"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gplinker":
            # `from gplinker.data import reading` imports gplinker.data.reading
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def test_every_module_has_a_floor():
    missing = [module_name(p) for p in PACKAGE.rglob("*.py") if floor_of(module_name(p)) is None]
    assert not missing, f"give these modules a floor in FLOORS and docs/architecture.md: {missing}"


def test_no_module_imports_a_higher_floor():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = module_name(path)
        for line, target in gplinker_imports(path):
            if floor_of(target) is not None and floor_of(target) > floor_of(here):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} (floor {floor_of(here)}) imports "
                              f"{target} (floor {floor_of(target)})")
    assert not upward, "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    """The walker finds function-level and from-imports (so the test above can fail)."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from gplinker.commands import train\n    import gplinker.cli\n", encoding="utf-8")
    assert gplinker_imports(source) == [(2, "gplinker.commands.train"), (3, "gplinker.cli")]
    assert floor_of("gplinker.commands.train") > floor_of("gplinker.data.reading")
