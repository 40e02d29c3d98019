"""Per-VM fingerprints of the marker properties: which VMs an incremental scan has to look at.

The marker pass (MARKER_PATHS of every VM, in one container-view request or in parallel requests
over disjoint sets of hosts) is cut into per-VM byte spans without building a tree, and each span is
hashed (sha256, in C). Only VMs whose digest differs from the one the previous inventory stored are
parsed. A full scan takes the digests from its own response bytes (the marker properties' propSet
elements, in the order the server sent them), so a VM's digest is never newer than its record.
Bytes that differ without a real change (another ordering, another tool version) only cost a
parse; a real change always changes the bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from adapters.vcenter.soap_reader import Moref, RawObjects, SoapReader, parse_objects, parse_page, split_objects
from adapters.vcenter.vm_extract import MARKER_PATHS, extract_marker

__all__ = ["MarkerPass", "full_read_digests", "marker_context", "read_markers"]

VM = "VirtualMachine"
_FORMAT = b"vm-markers/2"
_DIGEST_CHARS = 20                 # 80 bits of sha256 (with SHA-NI the fastest hash in hashlib here)
_MARKER_PROP = re.compile(rb"<propSet><name>(?:" + b"|".join(re.escape(p.encode()) for p in MARKER_PATHS)
                          + rb")</name>")
_END_PROP, _CLOSE_OBJ = b"</propSet>", b"</obj>"
_CLOSE_LEN = len(b"</objects>")


def marker_context(custom_fields: Mapping[str, str], paths: Sequence[str] = MARKER_PATHS) -> bytes:
    """What every digest also covers: the format, the paths, and the custom attribute names (key -> name).

    A VM's custom_attributes are named through the custom field definitions: renaming one must
    invalidate every digest, although no VM's bytes change.
    """
    fields = json.dumps(sorted(custom_fields.items()), separators=(",", ":")).encode()
    return b"|".join((_FORMAT, ",".join(paths).encode(), fields))


@dataclass
class MarkerPass:
    """The marker pass of one scan: every VM's digest, and its bytes for parsing the few that changed."""

    digests: dict[str, str] = field(default_factory=dict)      # moref -> digest ({} when the bytes were not split)
    pages: list[RawObjects] = field(default_factory=list)
    unsplit: list[bytes] = field(default_factory=list)          # pages that could not be split: parsed whole
    refs: list[str] = field(default_factory=list)               # every VM read, in the server's order
    source: str = "view"       # view: every VM of a container view; hosts: the VMs of the hosts asked for

    def facts(self, refs: Iterable[str]) -> dict[str, dict[str, Any]]:
        """extract_marker facts of `refs` (and of every VM of a page that could not be split)."""
        wanted = set(refs)
        out: dict[str, dict[str, Any]] = {}
        for page in self.pages:
            mine = [ref for ref in wanted if ref in page.objects]
            out.update((ref, extract_marker(ref, props)) for ref, props in parse_objects(page, mine))
        for raw in self.unsplit:
            out.update((ref, extract_marker(ref, props)) for ref, props in parse_page(raw))
        return out

    def add(self, part: MarkerPass) -> None:
        """Take in another part of the pass (a VM seen in both, moved between hosts meanwhile, counts once)."""
        self.refs.extend(ref for ref in part.refs if ref not in self.digests)
        self.digests.update(part.digests)
        self.pages.extend(part.pages)
        self.unsplit.extend(part.unsplit)
        if self.unsplit:       # no digest for VMs we cannot delimit: the next scan parses everything
            self.refs = list(dict.fromkeys(self.refs + list(self.facts(()))))
            self.digests = {}


def read_markers(reader: SoapReader, context: bytes, paths: Sequence[str] = MARKER_PATHS, *,
                 groups: Sequence[Sequence[Moref]] = (), objects: Sequence[Moref] = ()) -> MarkerPass:
    """`paths` of every VM, digested per VM; nothing parsed yet.

    With `groups` (disjoint sets of hosts), one request per group, in parallel, over the hosts' VM
    lists: the server builds the parts at once, and no container view is built. Only VMs of those
    hosts are read: the caller checks for others (a new host, a VM moved while the pass ran). With
    `objects`, just those VMs.
    """
    def digested(**where: Any) -> MarkerPass:
        return _digest_pages(reader.retrieve_pages(VM, paths, **where), context)

    result = MarkerPass(source="hosts" if groups else "objects" if objects else "view")
    if len(groups) > 1:
        with ThreadPoolExecutor(max_workers=len(groups) - 1) as pool:   # this thread reads the first group
            others = [pool.submit(digested, through=group) for group in groups[1:]]
            result.add(digested(through=groups[0]))
            for part in others:
                result.add(part.result())
    else:
        result.add(digested(through=groups[0]) if groups else digested(objects=objects) if objects else digested())
    return result


def _digest_pages(pages: list[bytes], context: bytes) -> MarkerPass:
    result = MarkerPass()
    base = sha256(context)
    digests = result.digests
    for page in pages:
        split = split_objects(page)
        if split is None:
            result.unsplit.append(page)
            continue
        result.pages.append(split)
        for ref, body in split.objects.items():
            hasher = base.copy()
            hasher.update(body)
            digests[ref] = hasher.hexdigest()[:_DIGEST_CHARS]
        result.refs.extend(split.objects)
    return result


def full_read_digests(page: bytes, context: bytes) -> dict[str, str]:
    """The digests the marker pass would give, from a page of the full read (which asks for more paths).

    The object's <obj> element, its marker properties' propSet elements in the order they came, and
    the closing tag: the bytes the marker pass hashes for the same VM.
    """
    split = split_objects(page)
    if split is None:
        return {}
    base = sha256(context)
    found = {}
    for ref, body in split.objects.items():
        hasher = base.copy()
        start = body.index(_CLOSE_OBJ) + len(_CLOSE_OBJ)
        end = len(body) - _CLOSE_LEN
        hasher.update(memoryview(body)[:start])
        for match in _MARKER_PROP.finditer(body, start, end):   # every one, wherever the server put it
            stop = body.find(_END_PROP, match.end(), end)
            if stop < 0:
                return {}
            hasher.update(memoryview(body)[match.start():stop + len(_END_PROP)])
        hasher.update(memoryview(body)[end:])
        found[ref] = hasher.hexdigest()[:_DIGEST_CHARS]
    return found

