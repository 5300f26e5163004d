#!/usr/bin/env python3
"""securesystemslib and python-tuf read tuf-crates key files and attestations.

Usage::

  keys_and_attestations.py key FILE...
      Each FILE is a TUF public key object (a `NAME.pub.json` as `tuf-signer key
      generate` writes it). Computes its keyid as securesystemslib does
      (compute_default_keyid: sha256 of the canonical JSON of keytype, scheme
      and keyval), loads it with python-tuf's Key.from_dict, adds it to a
      python-tuf Root for the role "targets" and reads that Root back through
      Metadata.from_bytes. Prints a JSON array with, per file: "keyid",
      "unrecognized_fields" of the loaded key, and "root_key", the key as the
      re-read Root holds it (to_dict()).

  keys_and_attestations.py attestation FILE...
      Each FILE is a release attestation as tuf_core::attestation writes it:
      {"signed": {...}, "key": {...}, "signatures": [{"keyid", "sig"}]}.
      Loads the key with securesystemslib's Key.from_dict under the keyid
      securesystemslib computes for it and verifies the one signature over
      encode_canonical(signed) with Key.verify_signature. Prints a JSON array
      with, per file: "keyid" (computed), "signed_canonical_sha256",
      "verified" (true/false) and "error" (the exception, when not verified).

Exit status: 0 when every file could be read (whether or not its signature
verified), 1 otherwise.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from datetime import datetime, timezone
from typing import Any

from securesystemslib.formats import encode_canonical
from securesystemslib.signer import Key as SslibKey
from securesystemslib.signer import Signature

# The function securesystemslib itself computes default keyids with
# (SSlibKey.from_crypto, CryptoSigner); pinned by requirements.txt.
from securesystemslib.signer._utils import compute_default_keyid
from tuf.api.metadata import Key, Metadata, Root


def keyid_of(key_dict: dict[str, Any]) -> str:
    return compute_default_keyid(
        key_dict["keytype"], key_dict["scheme"], key_dict["keyval"]
    )


def read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def key_report(path: str) -> dict[str, Any]:
    key_dict = read_json(path)
    keyid = keyid_of(key_dict)
    # from_dict consumes the dict it is given.
    key = Key.from_dict(keyid, copy.deepcopy(key_dict))
    root = Root(expires=datetime(2030, 1, 1, tzinfo=timezone.utc))
    root.add_key(key, "targets")
    reread = Metadata.from_bytes(Metadata(root).to_bytes())
    return {
        "keyid": keyid,
        "unrecognized_fields": key.unrecognized_fields,
        "root_key": reread.signed.keys[keyid].to_dict(),
    }


def attestation_report(path: str) -> dict[str, Any]:
    attestation = read_json(path)
    keyid = keyid_of(attestation["key"])
    key = SslibKey.from_dict(keyid, copy.deepcopy(attestation["key"]))
    (signature,) = attestation["signatures"]
    signature = Signature.from_dict(copy.deepcopy(signature))
    data = encode_canonical(attestation["signed"]).encode("utf-8")
    report: dict[str, Any] = {
        "keyid": keyid,
        "signed_canonical_sha256": hashlib.sha256(data).hexdigest(),
    }
    try:
        key.verify_signature(signature, data)
        report["verified"] = True
    except Exception as e:  # noqa: BLE001 - the type is the report
        report["verified"] = False
        report["error"] = f"{type(e).__name__}: {e}"
    return report


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in ("key", "attestation"):
        print(__doc__, file=sys.stderr)
        return 1
    report = key_report if sys.argv[1] == "key" else attestation_report
    json.dump([report(path) for path in sys.argv[2:]], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
