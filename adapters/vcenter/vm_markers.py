"""Per-VM fingerprints of the marker properties: which VMs an incremental scan has to look at.

The marker pass (MARKER_PATHS of every VM in one container-view request) is cut into per-VM byte
spans without building a tree, and each span is hashed (blake2b, in C). Only VMs whose digest differs
from the one the previous inventory stored are parsed. A full scan takes the digests from its own
response bytes (the marker properties' propSet elements, in the order the server sent them), so a
VM's digest is never newer than its record. Bytes that differ without a real change (another
ordering, another tool version) only cost a parse; a real change always changes the bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

from adapters.vcenter.soap_reader import RawObjects, SoapReader, parse_objects, parse_page, split_objects
from adapters.vcenter.vm_extract import MARKER_PATHS, extract_marker

__all__ = ["MarkerPass", "full_read_digests", "marker_context", "read_markers"]

VM = "VirtualMachine"
_FORMAT = b"vm-markers/1"
_DIGEST_BYTES = 10
_MARKER_PROP = re.compile(rb"<propSet><name>(?:" + b"|".join(re.escape(p.encode()) for p in MARKER_PATHS)
                          + rb")</name>")
_END_PROP = b"</propSet>"
_CLOSE_LEN = len(b"</objects>")


def marker_context(custom_fields: Mapping[str, str]) -> bytes:
    """What every digest also covers: the format, the paths, and the custom attribute names (key -> name).

    A VM's custom_attributes are named through the custom field definitions: renaming one must
    invalidate every digest, although no VM's bytes change.
    """
    fields = json.dumps(sorted(custom_fields.items()), separators=(",", ":")).encode()
    return b"|".join((_FORMAT, ",".join(MARKER_PATHS).encode(), fields))


def _hasher(context: bytes) -> Any:
    return blake2b(context, digest_size=_DIGEST_BYTES)


@dataclass
class MarkerPass:
    """The marker pass of one scan: every VM's digest, and its bytes for parsing the few that changed."""

    digests: dict[str, str] = field(default_factory=dict)      # moref -> digest ({} when the bytes were not split)
    pages: list[RawObjects] = field(default_factory=list)
    unsplit: list[bytes] = field(default_factory=list)          # pages that could not be split: parsed whole
    refs: list[str] = field(default_factory=list)               # every VM, in the server's order

    def facts(self, refs: Iterable[str]) -> dict[str, dict[str, Any]]:
        """extract_marker facts of `refs` (and of every VM of a page that could not be split)."""
        wanted = set(refs)
        out: dict[str, dict[str, Any]] = {}
        for page in self.pages:
            mine = [ref for ref in page.objects if ref in wanted]
            out.update((ref, extract_marker(ref, props)) for ref, props in parse_objects(page, mine))
        for raw in self.unsplit:
            out.update((ref, extract_marker(ref, props)) for ref, props in parse_page(raw))
        return out


def read_markers(reader: SoapReader, context: bytes) -> MarkerPass:
    """MARKER_PATHS of every VM, digested per VM; nothing parsed yet."""
    result = MarkerPass()
    base = _hasher(context)
    digests = result.digests
    for page in reader.retrieve_pages(VM, MARKER_PATHS):
        split = split_objects(page)
        if split is None:
            result.unsplit.append(page)
            continue
        result.pages.append(split)
        for ref, (body, start) in split.objects.items():
            hasher = base.copy()
            hasher.update(memoryview(body)[start:-_CLOSE_LEN])
            digests[ref] = hasher.hexdigest()
        result.refs.extend(split.objects)
    if result.unsplit:          # no digest for VMs we cannot delimit: the next scan parses everything
        result.refs.extend(result.facts(()))
        result.digests = {}
    return result


def full_read_digests(page: bytes, context: bytes) -> dict[str, str]:
    """The digests the marker pass would give, from a page of the full read (which asks for more paths).

    The marker properties' propSet elements of each object, concatenated in the order they came.
    """
    split = split_objects(page)
    if split is None:
        return {}
    base = _hasher(context)
    found = {}
    for ref, (body, start) in split.objects.items():
        hasher = base.copy()
        end = len(body) - _CLOSE_LEN
        for match in _MARKER_PROP.finditer(body, start, end):   # every one, wherever the server put it
            stop = body.find(_END_PROP, match.end(), end)
            if stop < 0:
                return {}
            hasher.update(body[match.start():stop + len(_END_PROP)])
        found[ref] = hasher.hexdigest()
    return found
