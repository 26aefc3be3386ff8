"""The frames of a write-ahead segment: one log record each, checksummed.

A frame is a 4-byte little-endian payload length, the CRC-32 of the payload (4 bytes, the
``zlib.crc32`` of ISO 3309 / ITU-T V.42) and the payload: the record's fields as a JSON
object (timestamps in ISO 8601; NaN kept as ``NaN``, as Python's ``json`` reads it).
Frames are appended one after another. A process killed in the middle of an append leaves
a *torn tail*: a header or payload cut short, bytes whose checksum does not match, or
zeros (a length of 0: no record is empty).
:func:`decode` returns the records before the first such frame and where they end, so
recovery keeps every whole frame and drops the tail (the framing of LevelDB's and
RocksDB's write-ahead log, without their block padding).

>>> import datetime as dt
>>> from experiments.logs.schema import OutcomeRecord
>>> noon = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
>>> record = OutcomeRecord(outcome_id="o1", decision_id="d1", ts=noon, event="conversion",
...                        value=1.0, received_ts=noon, known_decision=True)
>>> data = encode(record) + encode(record)
>>> records, end = decode(data + data[:7], OutcomeRecord)  # a torn third frame
>>> records == [record, record], end == len(data)
(True, True)
"""

from __future__ import annotations

import datetime as dt
import struct
import zlib
from dataclasses import fields
from functools import cache

from pydantic_core import from_json, to_json

from experiments.logs.schema import TIMESTAMP, Record, arrow_schema

HEADER = struct.Struct("<II")  # payload length, CRC-32 of the payload
#: A longer length field is garbage, not a record: no log record comes near this size.
MAX_PAYLOAD = 1 << 24


def encode(record: object) -> bytes:
    """One frame holding ``record`` (a log record dataclass)."""
    payload = to_json(record, inf_nan_mode="constants")
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode(data: bytes, record_type: type[Record]) -> tuple[list[Record], int]:
    """The records of the whole frames at the start of ``data``, and the offset where
    they end (``len(data)`` unless the tail is torn)."""
    records: list[Record] = []
    timestamps = _timestamp_fields(record_type)
    offset = 0
    while offset + HEADER.size <= len(data):
        length, checksum = HEADER.unpack_from(data, offset)
        start, end = offset + HEADER.size, offset + HEADER.size + length
        # An empty payload is no record: zeros, as a crash (or a probe) can leave.
        if not 0 < length <= MAX_PAYLOAD or end > len(data):
            break
        if zlib.crc32(data[start:end]) != checksum:
            break
        values = from_json(data[start:end], allow_inf_nan=True)
        for name in timestamps:
            if isinstance(values.get(name), str):
                values[name] = dt.datetime.fromisoformat(values[name])
        records.append(record_type(**values))
        offset = end
    return records, offset


@cache
def _timestamp_fields(record_type: type) -> tuple[str, ...]:
    schema = arrow_schema(record_type)
    return tuple(f.name for f in fields(record_type) if schema.field(f.name).type == TIMESTAMP)
