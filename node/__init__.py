"""The agency's node: inbox, receipts, releases and requests, its settings, the ingest
listener and its command group (:mod:`node.cli`). It imports the protocol layer, never
:mod:`broker`."""

__all__: list[str] = []
