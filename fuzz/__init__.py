"""Fuzz harnesses: one input through every decoder path (see harness.py and CONTRIBUTING.md)."""
