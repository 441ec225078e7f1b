"""Deployment: render a federation's NATS, broker and node configuration (docs/operations.md)."""

__all__: list[str] = []
