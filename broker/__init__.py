"""The federation broker: the service, its streams, audit chain, dead letters, runner and
command group (:mod:`broker.cli`). It imports the protocol layer, never :mod:`node`."""

__all__: list[str] = []
