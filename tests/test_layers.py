"""The import arrows of src/kefu point down only (docs/architecture.md), checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import kefu

SRC = Path(kefu.__file__).parent
# Each package may import its own modules and those of lower ranks; the top-level modules (app.py, cli*.py,
# server.py) wire or drive everything and are not ranked.
RANK = {
    "transport": 5,
    "services": 4,
    "webhooks": 3,
    "bot": 3,
    "storage": 2,
    "pubsub": 2,
    "uploads": 2,
    "domain": 1,
    "errors": 0,
    "outages": 0,
    "config": 0,
}
SKIPS = {("transport", "storage")}  # the transport reaches storage through services only (Synapse's three hops)
ONLY_IN_STORAGE = ("sqlalchemy", "alembic")


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (inside functions and TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "kefu" and len(parts) > 1 and parts[1] in RANK else None


def test_imports_point_down_only() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        here = package_of("kefu." + ".".join(path.relative_to(SRC).with_suffix("").parts))
        if here is None:
            continue
        for module in imports(path):
            there = package_of(module)
            if there is not None and there != here and (RANK[there] >= RANK[here] or (here, there) in SKIPS):
                wrong.append(f"{path.relative_to(SRC)} imports {module}")
            if module.split(".")[0] in ONLY_IN_STORAGE and here != "storage":
                wrong.append(f"{path.relative_to(SRC)} imports {module}: only storage/ talks SQL")
    assert not wrong, "\n".join(wrong)
