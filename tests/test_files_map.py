"""The map of the files (drs/files.py) is the one place file names are spelled."""

import ast
from pathlib import Path

from drs import files

ROOT = Path(__file__).resolve().parents[1]
NAMES = {name: value for name, value in vars(files).items() if name.isupper() and isinstance(value, str)}
SOURCES = [path for path in [*ROOT.joinpath("drs").rglob("*.py"), *ROOT.glob("*.py")] if path.name != "files.py"]


def string_constants(path: Path) -> set[str]:
    """Every string literal of a module's code, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }


def test_every_file_has_one_name_and_every_name_is_used():
    assert len(set(NAMES.values())) == len(NAMES)
    code = "\n".join(path.read_text(encoding="utf-8") for path in SOURCES)
    unused = [name for name in NAMES if name not in code]
    assert unused == []


def test_no_other_module_spells_a_file_name():
    spelled = {
        (path.relative_to(ROOT).as_posix(), value)
        for path in SOURCES
        for value in string_constants(path) & set(NAMES.values())
    }
    assert spelled == set()


def test_the_map_documents_every_file():
    documented = files.__doc__ or ""
    assert [name for name in NAMES if name not in documented] == []
