"""The protocol layer shared by the node and the broker: crypto primitives (:mod:`protocol.crypto`),
key files (:mod:`protocol.keys`), the envelope (:mod:`protocol.envelope`), trust documents and
their store (:mod:`protocol.trust`), the verified policy view (:mod:`protocol.view`), high-water
marks (:mod:`protocol.marks`, :mod:`protocol.watermarks`), the directory
(:mod:`protocol.directory`), the NATS transport and settings (:mod:`protocol.transport`,
:mod:`protocol.jspublish`, :mod:`protocol.settings`), the health/metrics server
(:mod:`protocol.ops`), logging (:mod:`protocol.logs`) and the command-line plumbing every role's
command group shares (:mod:`protocol.commandline`).

It imports only :mod:`schemas` and :mod:`policies`; :mod:`node` and :mod:`broker` import it and
never each other. Import the submodules: this package exports nothing itself, so importing one
module does not load the crypto or NATS code of the others.
"""

__all__: list[str] = []
