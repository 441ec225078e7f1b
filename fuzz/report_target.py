"""atheris target: the report validator, for long coverage-guided runs (`make fuzz`).

Each input goes to parse_report (JSON ingest) and to open_report as a decrypted msgpack body
and as each section; when it is JSON or msgpack, the decoded value is also validated as data.
Anything but a PalermoError escaping, or a valid report that does not read back equal from its
wire form, is a crash.

    python -m fuzz.report_target CORPUS_DIR [SEED_DIR] -max_total_time=300
"""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports(include=["fuzz", "node", "schemas"]):
    import msgpack

    from fuzz import harness


def test_one_input(data: bytes) -> None:
    harness.report_input(data)
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        try:
            value = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            return
    harness.report_structure(value)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
