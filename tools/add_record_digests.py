"""Add the ``digest`` that ``bn_utils.book.results.load`` checks to stored records written before it.

    python tools/add_record_digests.py [results/]

Only for records you trust (the committed ones): it checks that each ``.npz`` still matches the
digest its record holds, adds ``digest`` to the ``.json`` and changes nothing else (the file is
rewritten in the format ``results.save`` uses, and the script checks that only the digest line
differs). Records that already have a digest are left alone.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bn_utils.book.results import record_digest  # noqa: E402
from bn_utils.runtime import atomic_write_bytes  # noqa: E402


def add_digest(path: Path) -> bool:
    """Add the digest to the record at ``path``; return False if it already had one."""
    text = path.read_text()
    doc = json.loads(text)
    if "digest" in doc:
        return False
    if json.dumps(doc, indent=1, sort_keys=True, allow_nan=False) != text:
        raise SystemExit(f"{path}: not in the format results.save writes; left alone")
    if doc.get("arrays"):
        npz = path.with_name(path.name[: -len(".json")] + ".npz")
        if hashlib.sha256(npz.read_bytes()).hexdigest() != doc["meta"].get("arrays_sha256"):
            raise SystemExit(f"{npz}: does not match its record; left alone")
    doc["digest"] = record_digest(doc)
    new = json.dumps(doc, indent=1, sort_keys=True, allow_nan=False)
    assert json.loads(new) == {**json.loads(text), "digest": doc["digest"]}
    atomic_write_bytes(path, new.encode())
    return True


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "results")
    for record in sorted(root.glob("*/*.json")):
        print(("added digest: " if add_digest(record) else "has a digest: ") + str(record))
