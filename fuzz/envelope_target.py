"""atheris target: the envelope decoder, for long coverage-guided runs (`make fuzz`).

Each input is tried twice: as raw envelope bytes (decode, the broker's inspect, a node's open
and open_report) and, when it parses as a msgpack map, as fields laid over a valid envelope and
re-signed, which reaches the checks behind the signature. Anything but a PalermoError escaping
is a crash; libFuzzer writes the input to the artifact directory.

    python -m fuzz.envelope_target CORPUS_DIR [SEED_DIR] -max_total_time=300
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["fuzz", "node", "schemas"]):
    import msgpack

    from fuzz import harness


def test_one_input(data: bytes) -> None:
    harness.envelope_input(data)
    try:
        fields = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        return  # not msgpack: the raw pass above was the whole test
    if isinstance(fields, dict):
        harness.envelope_structure(fields)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
