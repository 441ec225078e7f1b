"""NATS subject permissions per kind of user (docs/decisions/0009-nats-auth-and-permissions.md).

Everything here is deny-by-default: a user may publish and subscribe only on what its list
allows, and nats-server itself refuses the rest ("Permissions Violation"). The lists were worked
out against a real nats-server with nats-py 2.16 (tests/deploy/test_deployed_federation.py
runs a whole federation under them) — each JetStream API subject names the stream, and where
it can the consumer and its filter, so an agency's API calls reach only its own consumers:

- an agency publishes only ``plm.pub.<itself>.>``, its receipts and release answers
  (``plm.rcpt.<originator>.receipt.<itself>``, ``plm.rcpt.<requester>.release.<itself>``) and
  its own directory entries (``$KV.PLM_DIR.{bundle,subs,policy.agency}.<itself>``);
- it reads deliveries only through its durable ``node-<itself>`` on PLM_DLV, whose filter
  ``plm.dlv.<itself>.>`` is part of the permitted create subject (nats-server checks that the
  subject's filter is the consumer's), and receipts only through ``status-<itself>`` on PLM_RCPT;
- every reply comes to ``_INBOX_<itself>.>``, the only subject it may subscribe to, so no agency
  can read another's replies (each node sets ``nats_inbox_prefix``);
- the directory is readable by every member (it holds signed, public documents);
- only the broker may consume PLM_PUB (``plm.pub.>``) and publish ``plm.dlv.>``, dead letters,
  audit entries, replay markers, held envelopes and their void markers (PLM_HOLD) and notices;
  nobody publishes the releases (``plm.due.>``): the server's message schedule writes them;
  the administrator has the whole account.

No user but the administrator has a JetStream API verb that changes a stream (create, update,
delete, purge, snapshot, restore) or writes the directory's protected keys: the streams and the
directory bucket are created by the operator at deployment (``palermo broker streams create
--config broker.toml --nats-config admin.toml``), and the broker only checks them at start-up
(docs/decisions/0015-jetstream-api-per-role.md). The table in docs/security.md ("NATS
permissions per role") lists every verb per role, and tests/deploy/test_permissions_table.py
tries each one on a rendered hub.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from broker.embargo import HOLD_STREAM, RELEASE_CONSUMER
from broker.lanes import CONSUMER, ROUTINE_FILTER, URGENT_CONSUMER, URGENT_FILTER
from broker.streams import STREAMS

__all__ = [
    "ADMIN_INBOX",
    "BROKER_CONSUMER",
    "BROKER_INBOX",
    "BROKER_URGENT_CONSUMER",
    "DELIVERY_CONSUMER",
    "DIRECTORY_STREAM",
    "RELEASE_CONSUMER_NAME",
    "STATUS_CONSUMER",
    "STREAM_NAMES",
    "URGENT_DELIVERY_CONSUMER",
    "admin_permissions",
    "agency_permissions",
    "broker_permissions",
    "inbox_prefix",
    "leaf_permissions",
]

DIRECTORY_STREAM: Final[str] = "KV_PLM_DIR"
"""The JetStream stream behind the directory bucket ``PLM_DIR`` (protocol/directory.py)."""
STREAM_NAMES: Final[tuple[str, ...]] = STREAMS
"""Palermo's streams (broker/streams.py)."""
BROKER_CONSUMER: Final[str] = CONSUMER
"""The broker replicas' shared durable pull consumer on PLM_PUB's routine lane (broker/lanes.py)."""
BROKER_URGENT_CONSUMER: Final[str] = URGENT_CONSUMER
"""The same on PLM_PUB's urgent lane."""
RELEASE_CONSUMER_NAME: Final[str] = RELEASE_CONSUMER
"""Their durable pull consumer on PLM_HOLD's releases, ``plm.due.>`` (broker/embargo.py)."""
BROKER_INBOX: Final[str] = "_INBOX_BROKER"
ADMIN_INBOX: Final[str] = "_INBOX_ADMIN"
DELIVERY_CONSUMER: Final[str] = "node-{agency}"
"""The durable consumer a node reads its routine deliveries with (node/_lanes.py)."""
URGENT_DELIVERY_CONSUMER: Final[str] = "node-{agency}-urgent"
"""The one it reads its urgent deliveries with (node/_lanes.py)."""
STATUS_CONSUMER: Final[str] = "status-{agency}"
"""The short-lived consumer ``Node.delivery_status`` reads receipts with."""


def inbox_prefix(agency: str) -> str:
    """The reply-subject prefix of an agency's connections (its ``nats_inbox_prefix``)."""
    return f"_INBOX_{agency}"


def agency_permissions(agency: str, domain: str | None = None) -> dict[str, Any]:
    """What agency ``agency``'s node (or its leafnode connection) may do.

    With the hub's JetStream ``domain``, every API subject is also allowed in its domain form
    (``$JS.<domain>.API...``): a node behind a leafnode server must use it, because nats-server
    denies plain ``$JS.API.>`` and ``$KV.>`` across a leafnode in a non-system account.
    """
    api = "$JS.API"
    dlv = DELIVERY_CONSUMER.format(agency=agency)
    urgent = URGENT_DELIVERY_CONSUMER.format(agency=agency)
    status = STATUS_CONSUMER.format(agency=agency)
    permissions: dict[str, Any] = {
        "publish": {
            "allow": [
                f"plm.pub.{agency}.>",
                f"plm.rcpt.*.receipt.{agency}",
                f"plm.rcpt.*.release.{agency}",
                # Its own directory entries only; a forged entry would fail verification
                # anyway, but this keeps an agency from overwriting (withholding) others'.
                f"$KV.PLM_DIR.bundle.{agency}",
                f"$KV.PLM_DIR.subs.{agency}",
                f"$KV.PLM_DIR.policy.agency.{agency}",
                *_directory_reads(api),
                # Deliveries: one durable consumer per lane (decision 0032), each filter
                # fixed to this agency's own deliveries.
                *(
                    grant
                    for consumer in (dlv, urgent)
                    for grant in (
                        f"{api}.CONSUMER.INFO.PLM_DLV.{consumer}",
                        f"{api}.CONSUMER.CREATE.PLM_DLV.{consumer}.plm.dlv.{agency}.>",
                        f"{api}.CONSUMER.MSG.NEXT.PLM_DLV.{consumer}",
                        f"$JS.ACK.PLM_DLV.{consumer}.>",
                    )
                ),
                # Receipts for its own reports ('palermo status').
                f"{api}.CONSUMER.CREATE.PLM_RCPT.{status}.plm.rcpt.{agency}.>",
                f"{api}.CONSUMER.DELETE.PLM_RCPT.{status}",
                f"{api}.CONSUMER.MSG.NEXT.PLM_RCPT.{status}",
            ]
        },
        "subscribe": {"allow": [f"{inbox_prefix(agency)}.>"]},
    }
    if domain is not None:
        allowed = permissions["publish"]["allow"]
        allowed += [f"$JS.{domain}.API.{s[len(api) + 1 :]}" for s in allowed if s.startswith(api)]
    return permissions


def leaf_permissions(agency: str, members: Iterable[str], domain: str) -> dict[str, Any]:
    """The hub's view of agency ``agency``'s leafnode connection.

    A hub forwards interest across a leafnode only where the leaf user's permissions cover
    the whole interest subject, and the streams' interest is ``plm.pub.>`` and ``plm.rcpt.>``:
    with ``plm.pub.<agency>.>`` alone nothing published behind the leaf would reach a stream.
    So the leaf user may publish on the streams' subjects *except* every other member's
    (deny wins): the subjects it can use are the same as :func:`agency_permissions`'s. A
    member added later must be denied here too, which re-rendering does; until then the broker
    still refuses an envelope whose subject does not match its signed originator.
    """
    own = agency_permissions(agency, domain)
    wide = {f"plm.pub.{agency}.>": "plm.pub.>", f"plm.rcpt.*.receipt.{agency}": "plm.rcpt.>"}
    allow = [wide.get(s, s) for s in own["publish"]["allow"] if s != f"plm.rcpt.*.release.{agency}"]
    deny = ["plm.rcpt.*.notice"]
    for other in sorted(set(members) - {agency}):
        deny += [f"plm.pub.{other}.>", f"plm.rcpt.*.receipt.{other}", f"plm.rcpt.*.release.{other}"]
    return {"publish": {"allow": allow, "deny": deny}, "subscribe": own["subscribe"]}


def _directory_reads(api: str = "$JS.API") -> list[str]:
    """Read and watch the directory: bucket info, gets, and the ordered consumer of a watch."""
    return [
        f"{api}.STREAM.INFO.{DIRECTORY_STREAM}",
        f"{api}.DIRECT.GET.{DIRECTORY_STREAM}.>",
        f"{api}.STREAM.MSG.GET.{DIRECTORY_STREAM}",
        f"{api}.CONSUMER.CREATE.{DIRECTORY_STREAM}",
        f"{api}.CONSUMER.CREATE.{DIRECTORY_STREAM}.>",
        f"{api}.CONSUMER.DELETE.{DIRECTORY_STREAM}.*",
        f"{api}.CONSUMER.INFO.{DIRECTORY_STREAM}.*",
        # Flow-control replies of the watch's push consumer ($JS.FC.<stream>.<consumer>.*):
        # the directory's only, not every stream's.
        f"$JS.FC.{DIRECTORY_STREAM}.>",
    ]


def broker_permissions() -> dict[str, Any]:
    """The broker: consumes PLM_PUB, writes deliveries, dead letters, audit, markers, notices.

    Exactly the JetStream API calls it makes, and no verb that changes a stream: with
    ``$JS.API.>`` it could update the directory's stream KV_PLM_DIR to source another stream
    through a subject transform into ``$KV.PLM_DIR.>`` and so write any directory key, an older
    signed revocation list included (issue 12, item 5). It may not publish ``$KV.>`` at all.
    """
    api = "$JS.API"
    return {
        "publish": {
            "allow": [
                "plm.dlv.>",
                "plm.dead.>",
                "plm.audit.>",
                "plm.seen.>",
                # Embargo (decision 0020): the schedule holding an envelope, and the marker a
                # retraction leaves. Never plm.due.>: only the server's schedule releases.
                "plm.hold.>",
                "plm.void.>",
                "plm.rcpt.*.notice",
                # Start-up: every stream must exist with the expected configuration; the
                # broker checks, the operator creates (broker.streams.ensure_streams).
                *(f"{api}.STREAM.INFO.{name}" for name in STREAM_NAMES),
                # Its durable consumer per lane on PLM_PUB (decision 0032), each filter fixed
                # in the subject: look it up, create or narrow it at start, pull, acknowledge.
                *(
                    grant
                    for consumer, lane in (
                        (BROKER_CONSUMER, ROUTINE_FILTER),
                        (BROKER_URGENT_CONSUMER, URGENT_FILTER),
                    )
                    for grant in (
                        f"{api}.CONSUMER.INFO.PLM_PUB.{consumer}",
                        f"{api}.CONSUMER.CREATE.PLM_PUB.{consumer}.{lane}",
                        f"{api}.CONSUMER.MSG.NEXT.PLM_PUB.{consumer}",
                        f"$JS.ACK.PLM_PUB.{consumer}.>",
                    )
                ),
                # Replay markers: read the marker a refused publish collided with, and delete
                # the one marker a dead-lettered envelope wrote (not a purge: one message).
                f"{api}.STREAM.MSG.GET.PLM_SEEN",
                f"{api}.STREAM.MSG.DELETE.PLM_SEEN",
                # Releases at not_before: its durable consumer on PLM_HOLD, filter fixed; read
                # a void marker, delete the schedule a retraction cancels (one message).
                f"{api}.CONSUMER.INFO.{HOLD_STREAM}.{RELEASE_CONSUMER}",
                f"{api}.CONSUMER.CREATE.{HOLD_STREAM}.{RELEASE_CONSUMER}.plm.due.>",
                f"{api}.CONSUMER.MSG.NEXT.{HOLD_STREAM}.{RELEASE_CONSUMER}",
                f"$JS.ACK.{HOLD_STREAM}.{RELEASE_CONSUMER}.>",
                f"{api}.STREAM.MSG.GET.{HOLD_STREAM}",
                f"{api}.STREAM.MSG.DELETE.{HOLD_STREAM}",
                *_directory_reads(api),
            ]
        },
        "subscribe": {"allow": [f"{BROKER_INBOX}.>"]},
    }


def admin_permissions() -> dict[str, Any]:
    """The federation operator ('palermo directory publish', 'palermo audit'): everything."""
    return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
