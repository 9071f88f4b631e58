"""Settings, stores, price books, AWS clients and contexts are passed under their real types.

``Any`` on such a parameter hides which object a function needs and lets a wrong one through
unnoticed, so :func:`loose_annotations` reads every module of tracker/ and jobs/ with ``ast``
and lists each parameter whose name says it holds one of them (``settings``, ``store``,
``price_book``, ``ce_client``, ``ctx``, ...) and each function whose name says it returns one
(``price_book()``, ``ce_client()``, ``store_from()``) that is left unannotated or annotated
with ``Any`` or ``object``. Private helpers are held to it too: they receive the same objects.
``Any`` stays fine elsewhere (JSON payloads, ``dict[str, Any]`` rows, TOML values being
validated) and on ``*args``/``**kwargs``.

Names imported only under ``if TYPE_CHECKING:`` are never evaluated at run time, so a typo
there would pass unseen: :func:`unresolved_annotations` evaluates every annotation against its
module with those imports added.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("tracker", "jobs")
WATCHED = (
    "settings", "store", "price_book", "book", "policy", "client", "context", "ctx", "factory",
    "queries", "ledger", "session", "connection", "engine", "notifier", "counter", "clock",
    "progress", "repo", "runs",
)  # fmt: skip
# The name itself, or a qualified one (``ce_client``, ``notify_settings``, ``_sts_client``);
# for functions also ``<name>_from``/``<name>_for`` (``store_from``, ``session_for``).
_PARAMETER = re.compile(rf"^_*(?:\w+_)?(?:{'|'.join(WATCHED)})$")
_FUNCTION = re.compile(rf"^_*(?:\w+_)?(?:{'|'.join(WATCHED)})(?:_from|_for)?$")
_LOOSE = {"Any", "object"}
# Alembic runs env.py at import, inside its own migration context.
_NOT_IMPORTABLE = ("tracker/store/migrations/",)


def _modules() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def _annotation(node: ast.expr) -> ast.expr:
    """A quoted annotation (``"Store"``) parsed into the expression it names."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return ast.parse(node.value, mode="eval").body
    return node


def _loose(node: ast.expr | None) -> str | None:
    """Why an annotation names no real type, or None when it does."""
    if node is None:
        return "unannotated"
    expr = _annotation(node)
    for part in ast.walk(expr):
        name = part.id if isinstance(part, ast.Name) else getattr(part, "attr", None)
        if name == "Any" or (name == "object" and part is expr):
            return f"annotated {ast.unparse(expr)}"
    return None


def loose_annotations(source: str, filename: str = "<source>") -> list[str]:
    """``file:line name: why`` for each watched parameter or return without a real type."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            why = _loose(arg.annotation) if _PARAMETER.match(arg.arg) else None
            if why:
                found.append(f"{filename}:{arg.lineno} {node.name}({arg.arg}): {why}")
        why = _loose(node.returns) if _FUNCTION.match(node.name) else None
        if why:
            found.append(f"{filename}:{node.lineno} {node.name}() return: {why}")
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_imports(tree: ast.Module) -> list[ast.stmt]:
    return [
        statement
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for statement in node.body
    ]


def unresolved_annotations(path: Path) -> list[str]:
    """Annotations of ``path``'s functions that do not evaluate in its module's namespace."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    namespace = dict(vars(importlib.import_module(_module_name(path))))
    exec(compile(ast.Module(_type_checking_imports(tree), []), str(path), "exec"), namespace)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        args = node.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        annotations = [a.annotation for a in params if a is not None and a.annotation]
        for annotation in [*annotations, *([node.returns] if node.returns else [])]:
            text = ast.unparse(_annotation(annotation))
            try:
                eval(text, namespace)  # noqa: S307 - our own source, to check its names exist
            except Exception as exc:  # noqa: BLE001 - any failure means a name that is not there
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {text}: {exc}")
    return found


def test_settings_stores_price_books_and_clients_have_real_types() -> None:
    found = []
    for path in _modules():
        found += loose_annotations(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert found == [], "name the real type (import it under TYPE_CHECKING if heavy):\n" + (
        "\n".join(found)
    )


def test_every_annotation_names_something_that_exists() -> None:
    found = []
    for path in _modules():
        if path.name != "__main__.py" and not str(path.relative_to(REPO)).startswith(
            _NOT_IMPORTABLE
        ):
            found += unresolved_annotations(path)
    assert found == [], "\n".join(found)


EXAMPLE = """
from typing import TYPE_CHECKING, Any
import typing

if TYPE_CHECKING:
    from tracker.store.database import Store

def collect(settings: Any, store, price_book: "Any", ce_client: Any | None = None) -> int: ...
def report(store: Store, *rows: Any, queries: typing.Any, **context: Any) -> dict[str, Any]: ...
def _helper(ctx: object, policy: dict[str, Any], book: "Store") -> None: ...
def s3_client(region: str): ...
def price_book() -> Any: ...
def store_from(args: Any) -> "Store": ...
def render(value: Any, row: dict[str, Any], job: object) -> Any: ...
"""


def test_loose_annotations_are_caught() -> None:
    assert loose_annotations(EXAMPLE, "example.py") == [
        "example.py:8 collect(settings): annotated Any",
        "example.py:8 collect(store): unannotated",
        "example.py:8 collect(price_book): annotated Any",
        "example.py:8 collect(ce_client): annotated Any | None",
        "example.py:9 report(queries): annotated typing.Any",
        "example.py:10 _helper(ctx): annotated object",
        "example.py:10 _helper(policy): annotated dict[str, Any]",
        "example.py:11 s3_client() return: unannotated",
        "example.py:12 price_book() return: annotated Any",
    ]


def test_an_annotation_naming_nothing_is_caught(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "typo_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    module = package / "mod.py"
    module.write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from decimal import Decimal\n"
        "def fine(amount: Decimal) -> Decimal | None: ...\n"
        "def typo(store: Stroe) -> None: ...\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    assert unresolved_annotations(module) == [
        "typo_pkg/mod.py:6 typo: Stroe: name 'Stroe' is not defined"
    ]
