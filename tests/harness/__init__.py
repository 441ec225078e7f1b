"""One harness for every test that needs a live stack.

- ``fixtures`` (pytest fixtures, loaded by ``tests/conftest.py``): ``nats_server``, ``nats_url``,
  ``nats_cluster`` (3 servers), ``nats_leaf_pair`` (hub + leafnode), ``fed`` (the
  example federation) and ``federated_url`` (a server holding its streams and documents).
- ``services``: the federation into a server (``setup_federation``, ``publish_document``), a
  broker (``running_broker`` in this process, ``start_broker_process`` as ``palermo broker
  run``), nodes (``connect_node``, ``running_nodes``, ``run_until_stored``), a service's view of the
  live directory (``follow_directory``, ``live_view``,
  ``broker_on``), the ``palermo`` command as a process
  (``palermo``, ``PALERMO``), one server run per module (``run_once``).
- ``streams``: publishing and reading what the stack holds (its streams, an inbox, a
  service's HTTP port), ``wait_for`` a condition.
- ``messages``: example reports, sealed envelopes, signed documents, hostile envelopes.
- ``live``: ``Live``, the whole federation (server, broker, one node per agency) on one loop in
  a thread, for the stateful test; ``deployed``: the servers ``palermo deploy render`` wrote.
"""

from tests.harness.deployed import RenderedServer, free_ports, render_on_free_ports, wait_cluster
from tests.harness.live import WAIT_S, Live, LoopThread, wait_until
from tests.harness.messages import (
    EXAMPLES,
    MED,
    Case,
    by_data,
    envelope,
    example,
    flip,
    resign,
    seal_many,
    standing_policy_denying,
    with_recipient,
)
from tests.harness.services import (
    PALERMO,
    broker_on,
    connect_node,
    follow_directory,
    live_view,
    palermo,
    publish_document,
    run_once,
    run_until_stored,
    running_broker,
    running_federation,
    running_nodes,
    setup_federation,
    start_broker_process,
    stop_process,
    write_broker_config,
)
from tests.harness.streams import (
    first_delivery,
    http_get,
    inbox_ids,
    publish,
    read_all,
    receipts_about,
    stream_count,
    stream_messages,
    wait_for,
)

__all__ = [
    "EXAMPLES",
    "MED",
    "PALERMO",
    "WAIT_S",
    "Case",
    "Live",
    "LoopThread",
    "RenderedServer",
    "broker_on",
    "by_data",
    "connect_node",
    "envelope",
    "example",
    "first_delivery",
    "flip",
    "follow_directory",
    "free_ports",
    "http_get",
    "inbox_ids",
    "live_view",
    "palermo",
    "publish",
    "publish_document",
    "read_all",
    "receipts_about",
    "render_on_free_ports",
    "resign",
    "run_once",
    "run_until_stored",
    "running_broker",
    "running_federation",
    "running_nodes",
    "seal_many",
    "setup_federation",
    "standing_policy_denying",
    "start_broker_process",
    "stop_process",
    "stream_count",
    "stream_messages",
    "wait_cluster",
    "wait_for",
    "wait_until",
    "with_recipient",
    "write_broker_config",
]
