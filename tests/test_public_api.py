"""Each package's ``__all__`` names exactly its public API (httpx's completeness test)."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "schemas",
    "schemas.errors",
    "protocol.envelope",
    "protocol.keys",
    "protocol.crypto",
    "protocol.transport",
    "protocol.jspublish",
    "policies",
    "protocol.trust",
    "protocol.view",
    "broker.audit",
]


def _defined_in(module: str | None, name: str) -> bool:
    """Defined in the module itself or in one of its private submodules."""
    return module is not None and (module == name or module.startswith(name + "._"))


@pytest.mark.parametrize("name", MODULES)
def test_all_is_complete(name: str) -> None:
    """Every public name defined in the module is in __all__, and every listed name exists."""
    module = importlib.import_module(name)
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
