"""The console's aiohttp application and its listener.

:func:`build_console_app` assembles the pages behind the middlewares: sessions, then CSRF;
security headers are added to every response, errors and static files included (an
``on_response_prepare`` hook, so no path can skip them). :class:`ConsoleServer` serves it on
the node's ``console_listen`` address, over TLS when ``console_tls_cert`` is set.
"""

from __future__ import annotations

import importlib
import ssl
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import jinja2
from aiohttp import web

from schemas.errors import ConfigError

from . import admin
from .accesslog import AccessLog
from .auth import session_middleware
from .auth_limits import LoginLimiter
from .auth_pages import add_auth_routes
from .auth_state import CONSOLE, Console
from .csrf import csrf_middleware
from .officers import OfficerStore, Role
from .sessions import SessionStore, utc_now

if TYPE_CHECKING:
    from ..config import NodeSettings
    from ..service import Node

__all__ = [
    "SECURITY_HEADERS",
    "STATIC_DIR",
    "TEMPLATE_DIR",
    "ConsoleServer",
    "build_console_app",
    "console_templates",
]

HERE: Final[Path] = Path(__file__).parent
TEMPLATE_DIR: Final[Path] = HERE / "templates"
STATIC_DIR: Final[Path] = HERE / "static"
MAX_BODY: Final[int] = 1024 * 1024
CSP: Final[str] = (
    "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'; report-uri /csp-report"
)
SECURITY_HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def console_templates() -> jinja2.Environment:
    """Every template autoescaped, whatever its name (reports are partner-controlled input);
    an undefined variable is an error, not an empty string that hides a bug."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    if request.app[CONSOLE].secure_cookies:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    # Pages may hold report content: never cached. Vendored assets hold none.
    static = request.path.startswith("/static/")
    response.headers["Cache-Control"] = "no-cache" if static else "no-store"


def build_console_app(
    node_ctx: Node | None,
    settings: NodeSettings,
    *,
    clock: Callable[[], datetime] = utc_now,
    totp_required: Callable[[], frozenset[Role]] | None = None,
) -> web.Application:
    """The console for ``node_ctx`` (None: accounts pages only, for tests), with accounts and
    the access log in ``settings.state_dir``. ``clock`` drives idle timeouts, login limits and
    TOTP (tests inject one); ``totp_required`` defaults to the federation policy's
    ``[rules] console_totp_required_for``."""
    agency = settings.agency
    console = Console(
        node=node_ctx,
        officers=OfficerStore.in_state_dir(settings.state_dir),
        sessions=SessionStore(settings.console_idle_timeout, clock),
        limiter=LoginLimiter(settings.console_login_failures, settings.console_login_window, clock),
        templates=console_templates(),
        clock=clock,
        access=AccessLog.in_state_dir(settings.state_dir, agency, clock),
        secure_cookies=settings.console_secure_cookies,
        trust_forwarded_for=settings.console_trust_forwarded_for,
        totp_required=totp_required or _policy_totp(node_ctx),
    )
    app = web.Application(
        client_max_size=MAX_BODY, middlewares=[session_middleware, csrf_middleware]
    )
    app[CONSOLE] = console
    app.on_response_prepare.append(_security_headers)
    add_auth_routes(app)
    admin.add_admin_routes(app)
    _add_pages(app)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False, show_index=False)
    return app


def _add_pages(app: web.Application) -> None:
    """The officers' pages (inbox, reports, compose, releases: node.console.pages)."""
    # Only the module's absence is tolerated (a console of accounts pages alone); any error
    # inside it propagates.
    try:
        pages = importlib.import_module(f"{__package__}.pages")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.pages":
            raise
        return
    pages.add_routes(app)


def _policy_totp(node: Node | None) -> Callable[[], frozenset[Role]]:
    def required() -> frozenset[Role]:
        federation = node.policy.federation if node is not None else None
        roles = federation.rules.console_totp_required_for if federation is not None else None
        return frozenset(roles or ())

    return required


class ConsoleServer:
    """The console's own listener (not the ingest one, not health/metrics)."""

    def __init__(self, app: web.Application, settings: NodeSettings) -> None:
        settings.check_console()
        address = settings.console_address
        if address is None:
            raise ConfigError("console_listen is not set: no console to serve")
        self.app, self.host, self.port = app, address[0], address[1]
        self.tls = _tls_context(settings) if settings.console_tls else None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    async def start(self) -> str:
        """Listen; returns the console's URL (with the port chosen when 0 was asked)."""
        self._runner = web.AppRunner(self.app, access_log=None)  # no report ids in logs
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.tls)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _tls_context(settings: NodeSettings) -> ssl.SSLContext:
    cert, key = settings.console_tls_cert, settings.console_tls_key
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the console TLS files (console_tls_cert {cert}, console_tls_key "
            f"{key}): {exc}"
        ) from exc
    return context
