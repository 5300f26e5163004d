#!/usr/bin/env python3
"""The python-tuf half of ``scripts/bench-load``.

    load_bench.py write DIR ENTRIES   writes DIR/root.json and DIR/targets.json
    load_bench.py load DIR [RUNS]     loads and verifies DIR/targets.json

``write`` builds a top-level targets document of ENTRIES target files in the
crates.io layout (``crates/ab/cd/name-x.y.z.crate``, a length and a sha256 each,
ten versions per name), signs it with one ed25519 key and writes it with
python-tuf's default ``Metadata.to_file()`` serializer, with a root delegating
``targets`` to that key. The content is derived from a counter, so every run
writes the same bytes.

``load`` reads the file, parses it (``Metadata.from_bytes``) and verifies its
signature against the root (``Root.verify_delegate`` over ``signed_bytes``,
as ngclient's ``TrustedMetadataSet`` does), RUNS times. It prints one
JSON object: the seconds of each run and the peak resident set size in bytes
(``ru_maxrss``).
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from securesystemslib.signer import CryptoSigner

from tuf.api.metadata import Metadata, Root, TargetFile, Targets

SYLLABLES = [
    "se", "rd", "to", "ki", "ra", "nd", "hy", "pe", "ur", "lo", "ga", "mi",
    "co", "re", "tu", "fa", "bi", "no", "x", "wa", "le", "sy", "pa", "th",
]
EXPIRES = datetime(2040, 1, 1, tzinfo=timezone.utc)


def crate_name(index: int) -> str:
    name = ""
    rest = index
    while True:
        name += SYLLABLES[rest % len(SYLLABLES)]
        rest //= len(SYLLABLES)
        if rest == 0:
            break
    while len(name) < 4:
        name += "rs"
    if index % 3 == 0:
        name += "-derive"
    elif index % 7 == 0:
        name += "_core"
    return name


def write(directory: Path, entries: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    seed = hashlib.sha256(b"tuf-crates load bench").digest()
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    signer = CryptoSigner(private)
    key = signer.public_key

    root = Metadata(Root(expires=EXPIRES))
    for role in ("root", "targets", "snapshot", "timestamp"):
        root.signed.add_key(key, role)
    root.sign(signer)
    root.to_file(str(directory / "root.json"))

    targets = Targets(expires=EXPIRES)
    for i in range(entries):
        name = crate_name(i // 10)
        version = f"{i % 10}.{(i // 10) % 7}.{i % 13}"
        path = f"crates/{name[:2]}/{name[2:4]}/{name}-{version}.crate"
        digest = hashlib.sha256(i.to_bytes(8, "little")).hexdigest()
        length = 1000 + (i * 7919) % 5_000_000
        targets.targets[path] = TargetFile(length, {"sha256": digest}, path)
    metadata = Metadata(targets)
    metadata.sign(signer)
    metadata.to_file(str(directory / "targets.json"))


def load(directory: Path, runs: int) -> None:
    root = Metadata[Root].from_bytes((directory / "root.json").read_bytes())
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        data = (directory / "targets.json").read_bytes()
        targets = Metadata[Targets].from_bytes(data)
        root.signed.verify_delegate(
            Targets.type, targets.signed_bytes, targets.signatures
        )
        seconds.append(time.perf_counter() - start)
        entries = len(targets.signed.targets)
        del targets, data
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": peak, "entries": entries}))


def main() -> None:
    if len(sys.argv) >= 4 and sys.argv[1] == "write":
        write(Path(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "load":
        load(Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
