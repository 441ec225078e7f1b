"""Each package's ``__all__`` names exactly its public API (httpx's completeness test)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

# Every package (the layers of DESIGN.md "Layout and layers" and their subpackages), then the
# modules other packages import names from.
PACKAGES = [
    "schemas",
    "policies",
    "protocol",
    "protocol.envelope",
    "node",
    "node.cli",
    "node.interop",
    "node.console",
    "broker",
    "palermo",
    "palermo.cli",
    "deploy",
]
MODULES = [
    *PACKAGES,
    "schemas.errors",
    "protocol.keys",
    "protocol.crypto",
    "protocol.transport",
    "protocol.jspublish",
    "protocol.trust",
    "protocol.view",
    "protocol.marks",
    "protocol.watermarks",
    "protocol.directory",
    "protocol.settings",
    "protocol.commandline",
    "protocol.ops",
    "protocol.logs",
    "node.config",
    "broker.audit",
    "broker.config",
]


def _defined_in(module: str | None, name: str) -> bool:
    """Defined in the module itself or in one of its private submodules."""
    return module is not None and (module == name or module.startswith(name + "._"))


ROOT = Path(__file__).resolve().parent.parent


def _product_module(name: str) -> ModuleType:
    """The product's module (no test package shadows one: test folders have no ``__init__``,
    and a regular package wins over a namespace one)."""
    module = importlib.import_module(name)
    assert Path(module.__file__ or "").resolve().is_relative_to(ROOT / name.split(".")[0])
    return module


@pytest.mark.parametrize("name", MODULES)
def test_all_is_complete(name: str) -> None:
    """Every public name defined in the module is in __all__, and every listed name exists."""
    module = _product_module(name)
    exported = set(module.__all__)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and _defined_in(getattr(value, "__module__", None), name)
        and not isinstance(value, type(importlib))
        and callable(value)
    }
    assert set() == public - exported - {"annotations"}
    assert set() == {n for n in exported if not hasattr(module, n)}


def test_every_package_is_listed() -> None:
    """Each package directory of the product is in PACKAGES, so none escapes the check."""
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("schemas", "policies", "protocol", "node", "broker", "palermo", "deploy")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert sorted(found) == sorted(PACKAGES)
