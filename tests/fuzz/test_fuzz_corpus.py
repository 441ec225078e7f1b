"""The atheris seed corpus in fuzz/corpus/ is current with the vectors and examples."""

from __future__ import annotations

from fuzz import seeds


def test_corpus_matches_the_seeds() -> None:
    """Each committed seed file is what `python -m fuzz.seeds` writes, and there are no others."""
    for target, expected in (
        ("envelope", seeds.envelope_seeds()),
        ("report", seeds.report_seeds()),
    ):
        folder = seeds.CORPUS / target
        actual = {p.name: p.read_bytes() for p in folder.iterdir()}
        assert expected == actual
