"""The node's receipts and delivery status: the signed receipts it sends (stored, opened,
refused) and ``palermo status``, read from receipts and the broker's signed notices."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from protocol import crypto
from protocol.transport import map_nats_errors
from protocol.trust import BROKER_NOTICE_DOMAIN, canonical_json, sign_document, verify_document
from schemas import EnvelopeHeader
from schemas.errors import AuthenticationFailed, InputError, PalermoError, TrustError

from ._tearline import _TearLines
from .receipts import MAX_RECEIPT_REASON, Receipt

_log = structlog.get_logger("palermo.node")
# Domain of the signatures that make this node's PLM_RCPT message ids (Node._msg_id).
MSG_ID_DOMAIN: Final[bytes] = b"palermo/v1/rcpt-msg-id\x00"


class _Status(_TearLines):
    """Receipts sent, and the delivery status read back."""

    # --- receipts ---------------------------------------------------------------------------------

    async def confirm_opened(self, report_id: str) -> bool:
        """Tell the originator (signed) the first time a person opens a report."""
        entry, _ = self.inbox.show(report_id)
        if not self.inbox.mark_opened(report_id, datetime.now(UTC)):
            return False
        await self._receipt(entry.originator, report_id, "opened")
        return True

    def _msg_id(self, kind: str, *fields: str) -> str:
        """A ``Nats-Msg-Id`` for what this node publishes to PLM_RCPT.

        JetStream deduplicates on the id across the whole stream, whoever publishes: an id
        another member can predict (``rcpt.<envelope>.<agency>.<status>``) lets a co-recipient
        publish first under it and have our genuine receipt dropped as a duplicate. This id is
        a hash of our Ed25519 signature over the fields: only we can compute it, and, Ed25519
        being deterministic, the same fields always give the same id, so a retry is still
        stored once.
        """
        sig = crypto.sign(self.identity.signing.private, MSG_ID_DOMAIN, canonical_json(fields))
        tag = crypto.digest(MSG_ID_DOMAIN, sig)[:16].hex()
        return f"{kind}.{self.identity.agency}.{tag}"

    async def _receipt(
        self, originator: str, envelope_id: str, status: str, reason: str = "",
        code: str | None = None,
    ) -> None:  # fmt: skip
        receipt = Receipt(
            envelope=envelope_id,
            originator=originator,
            recipient=self.identity.agency,
            status=status,
            code=code,
            reason=reason[:MAX_RECEIPT_REASON] or None,
            time=datetime.now(UTC),
        )
        signed = sign_document(receipt, self.identity.signing, self.identity.agency)
        await self._publish(
            f"plm.rcpt.{originator}.receipt.{self.identity.agency}",
            canonical_json(signed),
            self._msg_id("rcpt", envelope_id, status),
            "send a receipt",
        )

    async def _refuse(
        self, msg: Msg, exc: PalermoError, header: EnvelopeHeader | None = None
    ) -> str:
        """Terminate a delivery no redelivery can fix, and log and count why.

        With ``header`` (only once its signature verified, so the originator is genuine), the
        originator also gets a signed refusal receipt naming the code and the reason. The
        receipt goes first: if it cannot be sent the delivery is retried, not lost.
        """
        stage = exc.stage if isinstance(exc, AuthenticationFailed) else None
        _log.warning("delivery refused", subject=msg.subject, code=exc.code, reason=exc.reason,
                     stage=stage)  # fmt: skip
        if header is not None:
            await self._receipt(header.originator, header.id, "refused", exc.reason, exc.code)
        await msg.term()
        self.refused += 1
        self.metrics.refused.labels(reason=exc.code).inc()
        return exc.code

    # --- delivery status --------------------------------------------------------------------------

    async def delivery_status(self, report_id: str) -> dict[str, dict[str, Any]]:
        """Per recipient, what came back for one of our reports: receipts and broker refusals.

        Receipts are verified against the recipient's certificate; a receipt that does not
        verify is reported as such, never trusted. The report's tear-line versions are part
        of it: their recipients' rows carry ``tear_line`` (the version's envelope id).
        """
        # The original and its tear-line versions: one report to the officer who sent it.
        envelopes = {report_id: None, **{d: d for d in self.inbox.tear_lines(report_id)}}
        out: dict[str, dict[str, Any]] = {}
        for msg in await self._rcpt_messages():
            self._status_from(msg, envelopes, out)
        return dict(sorted(self._embargoed(report_id, out).items()))

    async def _rcpt_messages(self) -> list[Msg]:
        """Everything PLM_RCPT holds for this agency (receipts, notices, release decisions),
        read from the start; unverified: each reader checks what it uses."""
        me = self.identity.agency
        # A fixed name, so a deployment's NATS permissions can allow exactly this consumer and
        # its filter (deploy/permissions.py); removed first, so every call reads from the start.
        name = f"status-{me}"
        with contextlib.suppress(nats.errors.Error):
            await self.js.delete_consumer("PLM_RCPT", name)
        with map_nats_errors("read the receipts"):
            await self.js.add_consumer(
                "PLM_RCPT",
                ConsumerConfig(
                    name=name,
                    filter_subject=f"plm.rcpt.{me}.>",
                    ack_policy=AckPolicy.NONE,
                    inactive_threshold=60,
                ),
            )
            sub = await self.js.pull_subscribe_bind(stream="PLM_RCPT", name=name)
        out: list[Msg] = []
        try:
            while True:
                try:
                    out += await sub.fetch(256, timeout=0.3)
                except (nats.errors.TimeoutError, TimeoutError):
                    break
        finally:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await sub.unsubscribe()
                await self.js.delete_consumer("PLM_RCPT", name)
        return out

    def _embargoed(
        self, report_id: str, out: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """Recipients of a report the broker still holds (not_before ahead), with nothing back
        yet: "embargoed until …", or, once retracted, that it will never be delivered."""
        try:
            header = self.inbox.sent_header(report_id)
        except InputError:
            return out  # not one of ours: only what came back
        until = header.handling.not_before
        retracted = self.inbox.sent_retracted(report_id)
        if until is None or (retracted is not None and retracted >= until):
            return out  # not embargoed, or retracted after its release: receipts say the rest
        if retracted is not None:
            row = {"status": "retracted", "reasons": [{"code": "retracted_before_release",
                   "message": f"retracted before its release at {until.isoformat()}: "
                   "never delivered"}]}  # fmt: skip
        elif until <= self.clock():
            return out  # released: receipts say the rest
        else:
            row = {"status": "embargoed", "until": until.isoformat(), "reasons": [{"code":
                   "embargoed", "message": f"embargoed until {until.isoformat()}; the broker "
                   "holds it and delivers it then"}]}  # fmt: skip
        for agency in header.recipients:
            out.setdefault(agency, dict(row))
        return out

    def _status_from(
        self, msg: Msg, envelopes: Mapping[str, str | None], out: dict[str, dict[str, Any]]
    ) -> None:
        """One receipt or notice into ``out`` if it is about one of ``envelopes`` (an envelope
        id to the tear-line id its rows are marked with, None for the original)."""
        try:
            signed = json.loads(msg.data)
            document = signed["document"]
            if not isinstance(document, dict):
                return
            envelope = document.get("envelope")
            if not isinstance(envelope, str) or envelope not in envelopes:
                return
        except (ValueError, KeyError, TypeError, RecursionError):
            return
        derived = envelopes[envelope]
        tear_line = {"tear_line": derived} if derived else {}
        me = self.identity.agency
        if document.get("kind") == "broker-notice":
            # Only the broker's notice subject, only notices about our reports, only signed
            # by a broker key this node was configured with: a notice names other agencies as
            # refused, and anyone who could write it would decide what our status says.
            if msg.subject != f"plm.rcpt.{me}.notice" or document.get("originator") != me:
                return
            if not self._broker_signed(signed, document):
                return
            for refusal in document.get("refused", []):
                out[refusal["recipient"]] = {
                    "status": "denied by broker",
                    "reasons": refusal.get("reasons", []),
                    "by": document.get("broker"),
                    **tear_line,
                }
            return
        # plm.rcpt.<me>.receipt.<recipient>: NATS permissions let only <recipient> publish
        # there, so a receipt counts only on its own recipient's subject, signed by it, and
        # about one of our reports. Anything else is ignored, not shown: a receipt moved to
        # another agency's subject is a claim by one agency dressed as another's channel.
        recipient = document.get("recipient")
        # (Ignored without a log line: 'palermo status --json' prints to stdout.)
        if msg.subject != f"plm.rcpt.{me}.receipt.{recipient}" or document.get("originator") != me:
            return
        cert = self.trust.members.get(recipient) if isinstance(recipient, str) else None
        try:
            if cert is None:
                raise TrustError(f"no certificate for {recipient!r}")
            receipt = verify_document(signed, Receipt, cert.public_signing_key, cert.agency)
        except PalermoError as exc:
            # Shown, but never over a verified receipt from the same agency.
            out.setdefault(
                str(recipient),
                {"status": "unverifiable receipt", "reasons": [exc.to_dict()], **tear_line},
            )
            return
        current = out.get(receipt.recipient, {})
        # The most advanced state wins: purged after delivered, delivered after nothing.
        rank = {"delivered": 1, "opened": 2, "refused": 3, "purged": 4}
        if rank.get(receipt.status, 0) >= rank.get(str(current.get("status")), 0):
            reasons = [{"message": receipt.reason}] if receipt.reason else []
            if receipt.code and reasons:
                reasons[0]["code"] = receipt.code
            out[receipt.recipient] = {
                "status": receipt.status,
                "time": receipt.time.isoformat(),
                "reasons": reasons,
                **tear_line,
            }

    def _broker_signed(self, signed: Mapping[str, Any], document: Mapping[str, Any]) -> bool:
        """Whether a broker notice carries a valid signature by one of ``broker_keys``."""
        try:
            signature = signed["signature"]
            key = self.broker_keys.get(signature["kid"])
            if key is None:
                raise KeyError(signature["kid"])
            crypto.verify(key.key, bytes.fromhex(signature["ed25519"]), BROKER_NOTICE_DOMAIN,
                          canonical_json(document))  # fmt: skip
        except (KeyError, TypeError, ValueError, crypto.AuthError):
            return False
        return True
