"""The composition root: the ``palermo`` command assembled from each role's command group
(:mod:`palermo.cli`), the demo (:mod:`palermo.demo`), the example development federation
(:mod:`palermo.devfed`) and the embedded nats-server launcher (:mod:`palermo.natsserver`).

It imports every layer below it (with :mod:`deploy`, the other half of the root); nothing but
:mod:`deploy` imports it.
"""

__all__: list[str] = []
