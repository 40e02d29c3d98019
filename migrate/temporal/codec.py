"""How the Temporal engine's payloads travel: zlib-compressed, with the SDK's logs sent to Python logging.

Plans, phase outputs and heartbeats are JSON with much repetition (VM facts, block ranges): compressed they
are several times smaller, which keeps a run's input under Temporal's blob limit (2 MB by default) for
larger plans and the histories small. Every client and worker of a run must use the same converter:
`data_converter()`. The SDK's core logs to stdout by default, which would break `--json` output: the
runtime forwards them to the `temporalio.core` logger (stderr, like every log of the tool).
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from collections.abc import Sequence
from functools import cache

from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

__all__ = ["ZlibCodec", "data_converter", "runtime"]

ENCODING = b"binary/zlib"


class ZlibCodec(PayloadCodec):
    """Compress each payload (level 6); payloads it did not compress pass through unchanged."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload(metadata={"encoding": ENCODING}, data=zlib.compress(p.SerializeToString(), 6))
                for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            inner = Payload()
            inner.ParseFromString(zlib.decompress(payload.data))
            decoded.append(inner)
        return decoded


def data_converter() -> DataConverter:
    """The converter of every client and worker of the engine."""
    return dataclasses.replace(DataConverter.default, payload_codec=ZlibCodec())


@cache
def runtime() -> Runtime:
    """One SDK runtime per process, its core's logs forwarded to Python logging (warnings and worse)."""
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")))))
