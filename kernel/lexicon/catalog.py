"""The lexicon documents under ``lexicons/``, loaded on first use and resolved by reference.

Nothing is read at import time: a workflow sandbox may import the kernel, and opening
files there is refused. Validate in the API or activities, not inside workflows.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

from kernel.lexicon.errors import LexiconValidationError


def lexicon_dir() -> Path:
    """The repository's ``lexicons/`` folder."""
    return Path(__file__).resolve().parents[2] / "lexicons"


@functools.cache
def lexicon_documents() -> MappingProxyType[str, dict[str, Any]]:
    """Every lexicon document, keyed by NSID."""
    root = lexicon_dir()
    documents: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        nsid = document["id"]
        # The file layout mirrors the NSID so that a reader can find a document by name.
        expected = root.joinpath(*nsid.split(".")).with_suffix(".json")
        if path != expected:
            raise RuntimeError(f"lexicon {nsid} must live at {expected}, not {path}")
        documents[nsid] = document
    return MappingProxyType(documents)


def resolve_ref(ref: str, base_nsid: str) -> tuple[str, str, dict[str, Any]]:
    """``(nsid, def name, def)`` for ``#name``, ``nsid`` or ``nsid#name`` seen in ``base_nsid``."""
    nsid, _, name = ref.partition("#")
    nsid = nsid or base_nsid
    name = name or "main"
    document = lexicon_documents().get(nsid)
    if document is None or name not in document["defs"]:
        raise KeyError(f"unknown lexicon reference {ref!r} (from {base_nsid})")
    return nsid, name, document["defs"][name]


def main_def(nsid: object, *kinds: str) -> dict[str, Any]:
    """The ``main`` def of ``nsid``, which must be one of ``kinds`` (record, query, procedure).

    An unknown NSID is a validation error, because records arrive naming their own type;
    asking for the wrong kind is a programming error.
    """
    document = lexicon_documents().get(nsid) if isinstance(nsid, str) else None
    if document is None or "main" not in document["defs"]:
        raise LexiconValidationError("$type", f"unknown lexicon {nsid!r}")
    definition: dict[str, Any] = document["defs"]["main"]
    if definition["type"] not in kinds:
        raise TypeError(f"{nsid} is a {definition['type']}, not a {' or '.join(kinds)}")
    return definition


def full_ref(ref: str, base_nsid: str) -> str:
    """The ``$type`` spelling of a reference: ``nsid`` for main defs, else ``nsid#name``."""
    nsid, _, name = ref.partition("#")
    nsid = nsid or base_nsid
    return nsid if name in ("", "main") else f"{nsid}#{name}"
