"""Layering, checked by parsing imports: Streamlit only in the UI layer, DuckDB only in the store."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "fraudlens"


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.add(str(node.args[0].value))
    return found


def roots(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def library_files() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_parser_sees_imports(tmp_path):
    sample = tmp_path / "s.py"
    sample.write_text("import duckdb as d\nfrom streamlit import x\ndef f():\n    import shap\n"
                      "importlib.import_module('xgboost')\n")
    assert {"duckdb", "streamlit", "shap", "xgboost"} <= roots(imported_modules(sample))


def test_only_fraudlens_ui_imports_streamlit():
    offenders = [rel(p) for p in library_files()
                 if "streamlit" in roots(imported_modules(p)) and "ui" not in p.relative_to(LIBRARY).parts[:1]]
    assert offenders == []


def test_only_the_store_imports_duckdb():
    offenders = [rel(p) for p in library_files()
                 if "duckdb" in roots(imported_modules(p)) and rel(p) != "fraudlens/store.py"]
    assert offenders == []


def test_pages_and_app_never_import_duckdb():
    files = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
    files = [p for p in files if p.is_file()]
    if not files:
        pytest.skip("no app.py or pages yet")
    offenders = [rel(p) for p in files if "duckdb" in roots(imported_modules(p))]
    assert offenders == []


# The lower layers of STYLE.md; a module may import only fraudlens modules of its layer or below.
LAYERS = {
    "config": 1, "errors": 1, "files": 1,
    "schema": 2, "metrics": 2, "windows": 2,
    "datasets": 3, "store": 3, "synth": 3, "ops": 3,
    "ingest": 4, "quality": 4, "features": 4, "analytics": 4, "export": 4, "audit": 4,
}


def test_lower_layers_never_import_higher_ones():
    offenders = []
    for path in library_files():
        parts = path.relative_to(LIBRARY).with_suffix("").parts
        own = LAYERS.get(parts[0])
        if own is None or len(parts) > 1:
            continue
        for module in imported_modules(path):
            bits = module.split(".")
            if bits[0] != "fraudlens" or len(bits) < 2:
                continue
            other = bits[1]
            if other == "ui" or other in ("pages", "app"):
                offenders.append(f"{rel(path)} imports {module}")
            elif other in LAYERS and LAYERS[other] > own:
                offenders.append(f"{rel(path)} (layer {own}) imports {module} (layer {LAYERS[other]})")
    assert offenders == []
