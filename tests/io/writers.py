"""Finds every place in the project's code that writes a file by itself instead of through
`v2a.core.storage.atomic_write`, by reading the source (no import, no run).

A write is a call that puts bytes in a file: `open(..., "w")` and its kin (`fs.open`, `av.open`,
`Path.open`) in a writing mode, `os.open` / `os.replace` / `os.rename`, `Path.write_text` /
`write_bytes`, and the libraries' own file writers (`pq.write_table`, `sf.write`, safetensors'
`save_file`, `savefig`, `.save`, `to_parquet`, ...). A call whose target is an in-memory buffer
(`io.BytesIO()`, by name or inline) writes no file and is not counted: that is how a writer hands
its bytes to `atomic_write`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("v2a", "tasks", "flows", "storage_schemas")

_WRITE_MODE_CHARS = set("wax+")
# Methods that write a file whatever object they are called on (`.save` is PIL's, torch's, numpy's ...).
_LIBRARY_WRITERS = {"save_file", "savefig", "to_parquet", "to_csv", "write_text", "write_bytes", "savez",
                    "savez_compressed", "save"}
# Functions called bare (from-imported), and module functions that write (pyarrow.parquet is `pq` here:
# v2a's own `parquet.write_table` is the atomic writer, not a direct one).
_BARE_WRITERS = {"save_file"}
_MODULE_WRITERS = {("pq", "write_table"), ("pq", "ParquetWriter"), ("pq", "write_to_dataset"),
                   ("ds", "write_dataset"), ("sf", "write"), ("soundfile", "write"), ("wavfile", "write"),
                   ("torchaudio", "save"),
                   ("os", "open"), ("os", "replace"), ("os", "rename"), ("shutil", "move"), ("shutil", "copy"),
                   ("shutil", "copyfile"), ("shutil", "copy2"), ("shutil", "copyfileobj")}
_BUFFERS = {"BytesIO", "StringIO"}


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_buffer_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _name(node.func) in _BUFFERS


def _writing_mode(call: ast.Call) -> bool:
    """An `open`-like call in a mode that writes; a mode held in a variable counts as writing."""
    modes = [k.value for k in call.keywords if k.arg == "mode"]
    # open(path, mode) and fs.open(path, mode) give it second; Path.open(mode) first, so look at both.
    modes += list(call.args[:2])
    for mode in modes:
        if isinstance(mode, ast.Name) and mode.id == "mode":
            return True
        for const in ast.walk(mode):
            if (isinstance(const, ast.Constant) and isinstance(const.value, str) and const.value
                    and set(const.value) <= set("rwaxbt+") and _WRITE_MODE_CHARS & set(const.value)):
                return True
    return False


class _Finder(ast.NodeVisitor):
    def __init__(self, module: str):
        self.module, self.scope, self.found = module, [], {}
        self.buffers: list[set[str]] = [set()]

    def _enter(self, node):
        self.scope.append(node.name)
        self.buffers.append(set(self.buffers[-1]))
        self.generic_visit(node)
        self.buffers.pop()
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _enter

    def visit_Assign(self, node: ast.Assign):
        if _is_buffer_call(node.value):
            self.buffers[-1].update(t.id for t in node.targets if isinstance(t, ast.Name))
        self.generic_visit(node)

    def visit_With(self, node: ast.With):
        # What `atomic_write` yields is its temporary file: writing into that handle is the atomic path.
        for item in node.items:
            if (isinstance(item.context_expr, ast.Call) and _name(item.context_expr.func) == "atomic_write"
                    and isinstance(item.optional_vars, ast.Name)):
                self.buffers[-1].add(item.optional_vars.id)
        self.generic_visit(node)

    def _in_memory(self, call: ast.Call) -> bool:
        targets = list(call.args) + [k.value for k in call.keywords]
        return any(_is_buffer_call(a) or (isinstance(a, ast.Name) and a.id in self.buffers[-1]) for a in targets)

    def visit_Call(self, node: ast.Call):
        func, name = node.func, _name(node.func)
        owner = _name(func.value) if isinstance(func, ast.Attribute) else None
        writes = False
        if (owner, name) in _MODULE_WRITERS:
            writes = True
        elif name == "open" and owner != "os":
            writes = _writing_mode(node)
        elif isinstance(func, ast.Attribute) and name in _LIBRARY_WRITERS:
            writes = True
        elif isinstance(func, ast.Name) and name in _BARE_WRITERS:
            writes = True
        if writes and not self._in_memory(node):
            where = f"{self.module}:{'.'.join(self.scope) or '<module>'}"
            self.found.setdefault(where, set()).add(f"{owner + '.' if owner else ''}{name}")
        self.generic_visit(node)


def direct_writers(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    """{"path/to/module.py:function": {the writing calls it makes}} over the project's packages."""
    found: dict[str, set[str]] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            finder = _Finder(path.relative_to(root).as_posix())
            finder.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
            for where, calls in finder.found.items():
                found.setdefault(where, set()).update(calls)
    return found


def calls_atomic_write(module: str, function: str, root: Path = ROOT) -> bool:
    """Whether `function` of `module` (a path under root) calls `storage.atomic_write`."""
    tree = ast.parse((root / module).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
            return any(isinstance(c, ast.Call) and _name(c.func) == "atomic_write" for c in ast.walk(node))
    raise LookupError(f"{module} has no function {function}")
