"""No module reaches into another's private names (issue 26): what one module needs of another is its public API."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("v2a", "tasks", "flows", "storage_schemas")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(path: Path) -> list[str]:
    """`from project.module import _name` and `module._name` where `module` is a project module imported here."""
    tree = ast.parse(path.read_text())
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            found += [f"{where}:{node.lineno} imports {a.name} from {node.module}"
                      for a in node.names if _private(a.name)]
            modules |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.asname and a.name.split(".")[0] in PACKAGES}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            found.append(f"{where}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def test_no_module_imports_or_reads_another_modules_private_names():
    found = [use for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
             for use in private_uses(path)]
    assert found == []


def test_the_check_sees_both_forms(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from v2a.mapper.trainer import _x\nfrom v2a.io import embeddings as e\ne._splits(1)\n")
    assert len(private_uses(bad)) == 2
