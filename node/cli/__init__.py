"""The node's command group: what :mod:`palermo.cli` adds to the ``palermo`` command for an
agency (``node run``, ``publish``, ``import``, ``subscribe``, ``status``, ``retract``, ``inbox``,
``request``/``requests``/``respond``, ``release``, ``keys rotate``, ``stats``, ``taxii``, ``stix``,
``misp``, ``officer``). It imports no other role."""

from __future__ import annotations

from ._inbox import inbox_app
from ._misp import misp_app
from ._node import (
    import_reports,
    node_app,
    publish,
    retract,
    rotate_command,
    status,
    subscribe,
)
from ._officer import officer_app
from ._releases import messages_cmd, release_app, request_cmd, respond_cmd
from ._stats import stats_app
from ._stix import stix_app
from ._taxii import taxii_app

__all__ = [
    "import_reports",
    "inbox_app",
    "messages_cmd",
    "misp_app",
    "node_app",
    "officer_app",
    "publish",
    "release_app",
    "request_cmd",
    "respond_cmd",
    "retract",
    "rotate_command",
    "stats_app",
    "status",
    "stix_app",
    "subscribe",
    "taxii_app",
]
