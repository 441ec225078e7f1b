"""The console's own listener: refused when it would carry passwords in clear, served over
TLS when a certificate is configured (a real socket and handshake)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy.pki import DevCA
from node.console import ConsoleServer, build_console_app
from schemas.errors import ConfigError
from tests.console._consoleapp import add, settings


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"console_listen": "0.0.0.0:8443"}, "not a loopback address, without TLS"),
        ({"console_listen": "10.1.2.3:8443", "dev": False}, "not a loopback address"),
        ({"dev": False}, "plain HTTP on loopback is for dev = true only"),
        ({"console_tls_cert": Path("/c.pem")}, "console_tls_cert and console_tls_key go together"),
    ],
    ids=["network-dev", "network", "loopback-production", "cert-without-key"],
)
def test_a_console_carrying_passwords_in_clear_is_refused(
    tmp_path: Path, overrides: dict[str, Any], problem: str
) -> None:
    """check_secure (what 'palermo node run' calls first) names what to set."""
    with pytest.raises(ConfigError, match=problem):
        settings(tmp_path, **overrides).check_secure()


def test_behind_a_tls_proxy_plain_http_is_accepted(tmp_path: Path) -> None:
    """The one exception: a TLS-terminating proxy is the only client (Kubernetes Ingress)."""
    overrides = {"console_listen": "0.0.0.0:8443", "console_behind_tls_proxy": True}
    settings(tmp_path, **overrides).check_console()


def test_a_malformed_address_is_refused(tmp_path: Path) -> None:
    """console_listen must be host:port."""
    with pytest.raises(ValueError, match="is not host:port"):
        settings(tmp_path, console_listen="localhost")


async def test_the_listener_serves_https_with_the_configured_certificate(
    tmp_path: Path,
) -> None:
    """A real TLS handshake against the CA; the session cookie is __Host-, Secure, HttpOnly,
    and HSTS is sent; plain HTTP to the same port gets no page."""
    ca = DevCA("test")
    ca.write(tmp_path / "ca.pem", tmp_path / "ca.key")
    pair = ca.issue("console-at-bmi", tmp_path / "console", hosts=["127.0.0.1"], server=True)
    add(tmp_path, "anna", "reader")
    config = settings(tmp_path, console_tls_cert=pair.cert, console_tls_key=pair.key, dev=False)
    server = ConsoleServer(build_console_app(None, config), config)
    url = await server.start()
    try:
        assert url.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}login", ssl=trust) as response:
                assert 200 == response.status
                cookie = response.cookies["__Host-plm_session"]
                assert (True, True) == (bool(cookie["secure"]), bool(cookie["httponly"]))
                assert "max-age=31536000" == response.headers["Strict-Transport-Security"]
            with pytest.raises(aiohttp.ClientError):
                await http.get(url.replace("https://", "http://") + "login")
    finally:
        await server.stop()
