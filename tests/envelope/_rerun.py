"""Run a test module's tests again under suite 2: the same tampering, forgery and refusal cases
must hold for hybrid (ML-KEM-768 + X25519) stanzas as for X25519 ones (issue 20).

The module is executed afresh while the factories hand out hybrid keys, so its module-level
envelopes are sealed with suite 2; its tests then run with the factories still on suite 2.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from tests.envelope._factories import use_suite


def rerun_under_suite_2(path: Path, name: str, skip: Collection[str]) -> dict[str, Any]:
    """The ``test_*`` functions of ``path``, bound to a copy of it sealed under suite 2 (and
    that copy, as ``rerun_module``); ``skip`` names tests about suite 1's own construction
    (shared ephemerals and the like)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with use_suite(2):
        spec.loader.exec_module(module)
    found: dict[str, Callable[..., Any]] = {
        k: v for k, v in vars(module).items() if k.startswith("test_") and callable(v)
    }
    unknown = set(skip) - set(found)
    assert not unknown, f"skip names tests that do not exist: {unknown}"
    return {"rerun_module": module, **{k: v for k, v in found.items() if k not in skip}}
