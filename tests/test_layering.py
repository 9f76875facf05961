"""Import layering (issue 22, item 7): the preprocessing shared by samplers and trainers lives in
``monai_diffrecon/modalities`` below both, so no sampler imports a trainer and no trainer imports a sampler; the
shared modules import neither (nor the workflows or the simulators). Checked on the source (AST), imports inside
functions included, so a lazy import cannot slip through."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monai_diffrecon"

#: package folder -> the sibling packages its modules must not import
FORBIDDEN = {
    "samplers": ("training",),
    "training": ("samplers",),
    "modalities": ("samplers", "training", "workflows", "data"),
}


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports (``import a.b``, ``from a.b import c`` → ``a.b`` and ``a.b.c``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for f in sorted((PACKAGE / folder).rglob("*.py")):
        for m in sorted(imported_modules(f)):
            if any(m == f"monai_diffrecon.{p}" or m.startswith(f"monai_diffrecon.{p}.") for p in forbidden):
                bad.append(f"{f.relative_to(PACKAGE.parent)} imports {m}")
    return bad


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_layering(folder):
    assert (PACKAGE / folder).is_dir()
    assert violations(folder, FORBIDDEN[folder]) == []


def test_scan_finds_a_violation(tmp_path):
    """The scan sees module-level, ``from … import``, and lazy in-function imports."""
    f = tmp_path / "m.py"
    f.write_text("import torch\ndef g():\n"
                 "    from monai_diffrecon import training\n    import monai_diffrecon.training.dsm\n")
    mods = imported_modules(f)
    assert {"monai_diffrecon.training", "monai_diffrecon.training.dsm"} <= mods
