"""The officer console: the node's web interface for liaison officers and analysts (issue 17,
docs/console.md, decision 0026).

For whoever writes pages (the API the pages build on)
---------------------------------------------------

* **The app.** :func:`build_console_app(node, settings) <node.console.app.build_console_app>`
  returns the ``aiohttp.web.Application``; :class:`~node.console.app.ConsoleServer` serves it
  on ``console_listen`` (``palermo node run`` and ``palermo dev up`` start it). Pages live in
  ``node.console.pages``: a module with ``add_routes(app: web.Application) -> None``, called by
  ``build_console_app`` after the login and administrator routes.
* **Access.** Decorate every handler with ``@require_role("reader" | "officer" |
  "release-authority" | "administrator")``: anonymous GET → 303 to /login, anonymous POST →
  401, wrong role → 403. Roles are cumulative (officer ⊇ reader, release-authority ⊇
  officer; administrator = accounts + reader). ``request[OFFICER]`` is a
  :class:`~node.console.auth_state.CurrentOfficer` (``.name``, ``.roles`` effective,
  ``.can(role)``) or None (a ``web.RequestKey``: aiohttp warns on string keys).
* **The node.** ``console_node(request)`` is the running :class:`node.service.Node` (its
  ``inbox``, ``publish``, ``policy``...); 503 when the console runs without one.
* **Rendering.** ``render(request, "page.html", {...}, status=200)``: Jinja2, autoescape on
  for every template, ``StrictUndefined`` (pass every variable you use, None included);
  ``officer`` and ``csrf_token`` are added. Templates extend ``base.html``
  (blocks: ``title``, ``head``, ``nav``, ``content``, ``scripts``). Static files:
  ``node/console/static/`` at ``/static/`` (no inline script and no ``on...=`` attributes:
  the CSP is ``script-src 'self'``; put JavaScript in static files).
* **CSRF.** Every non-GET request must carry the session token: in forms
  ``<input type="hidden" name="csrf_token" value="{{ csrf_token }}">``; from JavaScript the
  ``X-CSRF-Token`` header (read it from a ``<meta name="csrf-token">`` you render). Without
  it: 403 with a message. ``csrf_token(request)`` gives it in a handler.
* **Access log.** ``record_access(request, "open" | "publish" | "grant" | "deny" |
  "override" | "export", report_id=..., detail=...)`` after the action succeeded; ``detail``
  holds codes and ids only, never report content.
* **Headers.** Every response gets the CSP, ``X-Frame-Options: DENY``, ``nosniff``,
  ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store`` (static: ``no-cache``).
* **Tests.** ``build_console_app(None or node, NodeSettings(...), clock=...)`` with
  aiohttp's test client; helpers in tests/console/_consoleapp.py (``console_client``,
  ``login``, ``add``, ``Clock``), used by tests/console/test_auth.py.
"""

from __future__ import annotations

from .accesslog import ACTIONS, AccessLog, record_access
from .app import ConsoleServer, build_console_app
from .auth import console_node, render, require_role
from .auth_state import CONSOLE, OFFICER, Console, CurrentOfficer
from .csrf import csrf_token
from .officers import ROLES, Officer, OfficerStore, Role, has_role

__all__ = [
    "ACTIONS",
    "CONSOLE",
    "OFFICER",
    "ROLES",
    "AccessLog",
    "Console",
    "ConsoleServer",
    "CurrentOfficer",
    "Officer",
    "OfficerStore",
    "Role",
    "build_console_app",
    "console_node",
    "csrf_token",
    "has_role",
    "record_access",
    "render",
    "require_role",
]
