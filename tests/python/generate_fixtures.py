#!/usr/bin/env python3
"""Generate python-tuf interop fixture repositories for tuf-crates.

Run from the repository root (after ``scripts/python-venv``)::

    target/python-venv/bin/python tests/python/generate_fixtures.py

Writes, under ``tests/fixtures/python-tuf/``:

* ``keys/<name>.pem``       unencrypted PKCS#8 private keys (TEST ONLY; reused
                            if present, generated if missing)
* ``full/metadata/``        consistent-snapshot repository with root rotation,
                            mixed key types, delegations (paths, hash
                            prefixes, succinct hash bins), unicode target
                            paths, custom metadata and unrecognized fields
* ``full/targets/``         contents of the ASCII-named targets, stored under
                            their consistent-snapshot (sha256-prefixed) names
* ``minimal/metadata/``     one ed25519 key per role, consistent_snapshot false
* ``invalid/``              metadata that must be rejected (+ README.md,
                            index.json recording what python-tuf does with it)
* ``manifest.json``         one entry per valid metadata file, including the
                            sha256 of python's canonical JSON of ``signed``

Metadata is written with python-tuf's default ``Metadata.to_file()``
serializer. Ed25519 signatures are deterministic; ECDSA and RSA-PSS ones are
randomized, so to keep re-runs free of spurious diffs an existing metadata file
is kept byte-for-byte if its signed content, unrecognized fields and signing
keys are unchanged and all of its signatures still verify.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner, Signature, SSlibKey

from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Key,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.ngclient._internal.trusted_metadata_set import TrustedMetadataSet
from tuf.ngclient.config import EnvelopeType

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT = REPO_ROOT / "tests" / "fixtures" / "python-tuf"
KEYS_DIR = OUT / "keys"

EXPIRES = datetime(2099, 1, 1, 0, 0, 0, tzinfo=timezone.utc)
HASH_ALGS = ["sha256", "sha512"]

# name -> key type. Names are also the PEM file names.
KEY_SPECS = {
    # top-level root keys (v1: ed25519-a, ecdsa-a, rsa; v2: ed25519-b replaces ed25519-a)
    "root-ed25519-a": "ed25519",
    "root-ed25519-b": "ed25519",
    "root-ecdsa-a": "ecdsa",
    "root-rsa": "rsa",
    # other top-level roles ("online" keys: snapshot + timestamp)
    "targets-ed25519": "ed25519",
    "snapshot-ecdsa": "ecdsa",
    "timestamp-ed25519": "ed25519",
    # delegations
    "serde-ecdsa": "ecdsa",
    "hashed-ed25519": "ed25519",
    "unclaimed-ed25519": "ed25519",
    "bins-ed25519": "ed25519",
    # minimal repository
    "minimal-root": "ed25519",
    "minimal-targets": "ed25519",
    "minimal-snapshot": "ed25519",
    "minimal-timestamp": "ed25519",
}

manifest: list[dict[str, Any]] = []
KEYTYPE_BY_KEYID: dict[str, str] = {}


# --------------------------------------------------------------------------
# keys


def load_or_create_signer(name: str) -> CryptoSigner:
    keytype = KEY_SPECS[name]
    path = KEYS_DIR / f"{name}.pem"
    if path.exists():
        private_key = serialization.load_pem_private_key(path.read_bytes(), None)
    else:
        if keytype == "ed25519":
            private_key = ed25519.Ed25519PrivateKey.generate()
        elif keytype == "ecdsa":
            private_key = ec.generate_private_key(ec.SECP256R1())
        elif keytype == "rsa":
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            raise ValueError(keytype)
        KEYS_DIR.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    # CryptoSigner derives the SSlibKey (default scheme per key type:
    # ed25519 / ecdsa-sha2-nistp256 / rsassa-pss-sha256, default keyid).
    signer = CryptoSigner(private_key)
    expected = {"ed25519": "ed25519", "ecdsa": "ecdsa-sha2-nistp256", "rsa": "rsassa-pss-sha256"}
    assert signer.public_key.keytype == keytype, (name, signer.public_key.keytype)
    assert signer.public_key.scheme == expected[keytype], (name, signer.public_key.scheme)
    KEYTYPE_BY_KEYID[signer.public_key.keyid] = keytype
    return signer


def pubkey(signer: CryptoSigner, extra: dict[str, Any] | None = None) -> Key:
    k = signer.public_key
    return SSlibKey(k.keyid, k.keytype, k.scheme, dict(k.keyval), dict(extra or {}))


# --------------------------------------------------------------------------
# writing


P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def ecdsa_is_high_s(sig: Signature) -> bool:
    _, s_val = decode_dss_signature(bytes.fromhex(sig.signature))
    return s_val > P256_N // 2


def ecdsa_sig_info(md: Metadata) -> list[dict[str, Any]]:
    out = []
    for keyid, sig in md.signatures.items():
        if KEYTYPE_BY_KEYID.get(keyid) == "ecdsa":
            out.append({"keyid": keyid, "high_s": ecdsa_is_high_s(sig)})
    return out


def rel(path: Path) -> str:
    return path.relative_to(OUT).as_posix()


def sign_and_write(
    md: Metadata,
    signers: list[CryptoSigner],
    path: Path,
    sig_extra: dict[str, dict[str, Any]] | None = None,
    high_s: dict[str, bool] | None = None,
) -> bytes:
    """Sign md with all signers (in order) and write it with to_file().

    sig_extra maps keyid -> unrecognized fields to add to that Signature.
    high_s maps an ECDSA keyid -> whether its signature must have a high S
    (s > n/2; OpenSSL does not normalize S, verifiers must accept both).
    Reuses an existing file if it is equivalent (see module docstring).
    Returns the bytes of the file.
    """
    sig_extra = sig_extra or {}
    high_s = high_s or {}
    md.signatures.clear()
    for s in signers:
        want = high_s.get(s.public_key.keyid)
        for _ in range(200):
            sig = md.sign(s, append=True)
            if want is None or ecdsa_is_high_s(sig) == want:
                break
        else:
            raise RuntimeError("could not get wanted ECDSA S form")
    for keyid, extra in sig_extra.items():
        md.signatures[keyid].unrecognized_fields.update(extra)

    if path.exists():
        old_bytes = path.read_bytes()
        try:
            old = Metadata.from_bytes(old_bytes)
            pubs = {s.public_key.keyid: s.public_key for s in signers}
            same = (
                old.to_bytes() == old_bytes
                and all(
                    ecdsa_is_high_s(old.signatures[k]) == v for k, v in high_s.items()
                )
                and old.signed_bytes == md.signed_bytes
                and old.unrecognized_fields == md.unrecognized_fields
                and list(old.signatures) == list(md.signatures)
                and all(
                    old.signatures[k].unrecognized_fields
                    == md.signatures[k].unrecognized_fields
                    for k in md.signatures
                )
            )
            if same:
                for keyid, sig in old.signatures.items():
                    pubs[keyid].verify_signature(sig, old.signed_bytes)
                path.chmod(0o644)
                return old_bytes
        except Exception:  # noqa: BLE001 - any problem: just rewrite
            pass

    path.parent.mkdir(parents=True, exist_ok=True)
    md.to_file(str(path))  # python-tuf default serializer
    # securesystemslib's FilesystemBackend creates files with os.open's
    # default mode 0o777 (& ~umask): drop the executable bits.
    path.chmod(0o644)
    return path.read_bytes()


def add_manifest(
    path: Path,
    role: str,
    delegator: Path,
    **extra: Any,
) -> None:
    data = path.read_bytes()
    md = Metadata.from_bytes(data)
    canonical = encode_canonical(md.signed.to_dict())
    assert canonical is not None
    canonical_bytes = canonical.encode("utf-8")
    assert canonical_bytes == md.signed_bytes
    entry = {
        "file": rel(path),
        "role": role,
        "type": md.signed.type,
        "version": md.signed.version,
        "delegator": rel(delegator),
        "signed_canonical_sha256": hashlib.sha256(canonical_bytes).hexdigest(),
        "signed_canonical_length": len(canonical_bytes),
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "file_length": len(data),
    }
    ecdsa = ecdsa_sig_info(md)
    if ecdsa:
        entry["ecdsa_signatures"] = ecdsa
    entry.update(extra)
    manifest.append(entry)


def target_content(path: str) -> bytes:
    """Deterministic content of fixture target `path`."""
    return f"tuf-crates fixture target: {path}\n".encode("utf-8")


def target_file(path: str, algs: list[str] | None = None, **extra: Any) -> TargetFile:
    tf = TargetFile.from_data(path, target_content(path), algs or ["sha256"])
    tf.unrecognized_fields.update(extra)
    return tf


def safe_for_disk(path: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c in "-_./") for c in path)


def write_target_blob(targets_dir: Path, tf: TargetFile) -> None:
    """Store target content as ngclient downloads it with consistent
    snapshots: <dir>/<sha256>.<basename> (first hash in the hashes dict)."""
    if not safe_for_disk(tf.path):
        return
    first_hash = next(iter(tf.hashes.values()))
    parent, sep, name = tf.path.rpartition("/")
    dest = targets_dir / f"{parent}{sep}{first_hash}.{name}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(target_content(tf.path))


# --------------------------------------------------------------------------
# full repository


def build_full(s: dict[str, CryptoSigner]) -> None:
    base = OUT / "full"
    mdir = base / "metadata"
    tdir = base / "targets"
    # Start clean so renamed/removed roles do not leave stale files, but keep
    # old metadata bytes around for the "reuse if equivalent" logic.
    if tdir.exists():
        shutil.rmtree(tdir)
    mdir.mkdir(parents=True, exist_ok=True)
    expected_files: set[str] = set()

    def mpath(name: str) -> Path:
        expected_files.add(name)
        return mdir / name

    # ---- root v1 ---------------------------------------------------------
    def make_root(version: int, root_keys: list[str]) -> Metadata[Root]:
        root = Root(version=version, expires=EXPIRES, consistent_snapshot=True)
        root.unrecognized_fields["x-tuf-crates-root-extra"] = {
            "note": "unrecognized field in root signed",
            "n": [1, 2, 3],
            "ünï": True,
        }
        for name in root_keys:
            extra = None
            if name == "root-ecdsa-a":
                extra = {"x-tuf-crates-key-extra": "unknown field inside a key object"}
            root.add_key(pubkey(s[name], extra), "root")
        root.roles["root"].threshold = 2
        root.add_key(pubkey(s["targets-ed25519"]), "targets")
        root.add_key(pubkey(s["snapshot-ecdsa"]), "snapshot")
        root.add_key(pubkey(s["timestamp-ed25519"]), "timestamp")
        root.roles["timestamp"].unrecognized_fields["x-tuf-crates-role-extra"] = {
            "online": True
        }
        return Metadata(root)

    v1_keys = ["root-ed25519-a", "root-ecdsa-a", "root-rsa"]
    v2_keys = ["root-ed25519-b", "root-ecdsa-a", "root-rsa"]
    root1 = make_root(1, v1_keys)
    # v1 is signed by 2 of 3 (rsa key does not sign: threshold still met)
    p_root1 = mpath("1.root.json")
    ecdsa_root = s["root-ecdsa-a"].public_key.keyid
    sign_and_write(
        root1, [s["root-ed25519-a"], s["root-ecdsa-a"]], p_root1, high_s={ecdsa_root: False}
    )

    root2 = make_root(2, v2_keys)
    # v2 is signed by the old ed25519 key (only trusted by v1), the new one
    # (only trusted by v2) and the shared ecdsa + rsa keys: satisfies both
    # v1's and v2's threshold.
    p_root2 = mpath("2.root.json")
    root2_bytes = sign_and_write(
        root2,
        [s["root-ed25519-a"], s["root-ed25519-b"], s["root-ecdsa-a"], s["root-rsa"]],
        p_root2,
        high_s={ecdsa_root: True},
    )
    p_root = mpath("root.json")
    p_root.write_bytes(root2_bytes)

    # ---- hash-bin delegations (unclaimed -> unclaimed-bin-N) -------------
    succinct = SuccinctRoles(
        keyids=[s["bins-ed25519"].public_key.keyid],
        threshold=1,
        bit_length=4,
        name_prefix="unclaimed-bin",
    )
    bin_target_paths = [
        "crates/ra/nd/rand-0.8.5.crate",
        "crates/to/ki/tokio-1.0.0.crate",
        "crates/lo/g/log-0.4.22.crate",
        "crates/an/yh/anyhow-1.0.86.crate",
        "crates/re/ge/regex-1.10.0.crate",
        "crates/ü/ni/ünï-bin-0.1.0.crate",
        "toplevel-file.txt",
    ]
    bins: dict[str, dict[str, TargetFile]] = {name: {} for name in succinct.get_roles()}
    for p in bin_target_paths:
        bins[succinct.get_role_for_target(p)][p] = target_file(p)
    assert sum(1 for t in bins.values() if t) >= 3, "want targets in >= 3 bins"

    bin_files: dict[str, tuple[Path, bytes]] = {}
    for name, tfs in bins.items():
        md = Metadata(Targets(version=1, expires=EXPIRES, targets=tfs))
        p = mpath(f"1.{name}.json")
        bin_files[name] = (p, sign_and_write(md, [s["bins-ed25519"]], p))
        for tf in tfs.values():
            write_target_blob(tdir, tf)

    unclaimed = Targets(
        version=1,
        expires=EXPIRES,
        targets={},
        delegations=Delegations(
            keys={s["bins-ed25519"].public_key.keyid: pubkey(s["bins-ed25519"])},
            succinct_roles=succinct,
        ),
    )
    p_unclaimed = mpath("1.unclaimed.json")
    unclaimed_bytes = sign_and_write(Metadata(unclaimed), [s["unclaimed-ed25519"]], p_unclaimed)

    # ---- serde (path globs, terminating, ecdsa) --------------------------
    serde_targets = {
        p: target_file(p, HASH_ALGS)
        for p in [
            "crates/se/rd/serde/serde-1.0.203.crate",
            "crates/se/rd/serde_json/serde_json-1.0.117.crate",
            "crates/se/rd/serde-json/serde-json-0.1.0.crate",
        ]
    }
    p_serde = mpath("1.serde.json")
    serde_bytes = sign_and_write(
        Metadata(Targets(version=1, expires=EXPIRES, targets=serde_targets)),
        [s["serde-ecdsa"]],
        p_serde,
        high_s={s["serde-ecdsa"].public_key.keyid: True},
    )
    for tf in serde_targets.values():
        write_target_blob(tdir, tf)

    # ---- hashed (path_hash_prefixes, ed25519) ----------------------------
    prefixes = ["8f", "a0"]
    hashed_paths: list[str] = []
    for prefix in prefixes:
        i = 0
        while True:
            cand = f"crates/ha/sh/hashed-{i}.crate"
            if hashlib.sha256(cand.encode()).hexdigest().startswith(prefix):
                hashed_paths.append(cand)
                break
            i += 1
    hashed_targets = {p: target_file(p) for p in hashed_paths}
    p_hashed = mpath("1.hashed.json")
    hashed_bytes = sign_and_write(
        Metadata(Targets(version=1, expires=EXPIRES, targets=hashed_targets)),
        [s["hashed-ed25519"]],
        p_hashed,
    )
    for tf in hashed_targets.values():
        write_target_blob(tdir, tf)

    # ---- top-level targets -----------------------------------------------
    custom = {
        "nested": {"a": {"b": [1, 2, {"c": None, "d": [[], {}]}]}},
        "ints": [0, 1, -1, 9007199254740993, 18446744073709551615, -9223372036854775808],
        "bools": [True, False],
        "null": None,
        "unicode": "ünïcødé 🦀 \uff01 \u2028 end",
        "control": "\u0000\u0001\b\f\n\r\t\u001f\u007f",
        "escapes": "quote\" backslash\\ slash/ <html>&",
        "empty_object": {},
        "empty_array": [],
        # key ordering stress: code point order differs from UTF-16 order for
        # U+FF01 vs U+1F980 (astral), and from byte order of Latin-1 etc.
        "order": {"\uff01": 1, "🦀": 2, "é": 3, "z": 4, "Z": 5, "_": 6, "": 7, "a\u0000": 8, "a": 9},
    }
    top_targets: dict[str, TargetFile] = {}
    for p, kw in [
        ("crates/ün/ic/ünïcødé-1.0.0.crate", {"custom": custom}),
        ("crates/em/oj/emoji-🦀-0.1.0.crate", {"custom": {"emoji": "🦀", "n": 1}}),
        ('crates/qu/ot/quote"back\\slash-1.0.0.crate', {}),
        ("crates/ta/b/tab\there-1.0.0.crate", {}),
        ("config.json", {"x-tuf-crates-targetfile-extra": {"unknown": "field in TargetFile"}}),
        ("index/se/rd/serde", {"custom": {}}),
    ]:
        tf = target_file(p, HASH_ALGS, **kw)
        top_targets[p] = tf
        write_target_blob(tdir, tf)

    serde_role = DelegatedRole(
        name="serde",
        keyids=[s["serde-ecdsa"].public_key.keyid],
        threshold=1,
        terminating=True,
        paths=["crates/se/rd/serde/*", "crates/se/rd/serde_*/*", "crates/se/rd/serde-[a-z]???/*"],
        unrecognized_fields={"x-tuf-crates-delegatedrole-extra": [1, "two", None]},
    )
    hashed_role = DelegatedRole(
        name="hashed",
        keyids=[s["hashed-ed25519"].public_key.keyid],
        threshold=1,
        terminating=False,
        path_hash_prefixes=prefixes,
    )
    unclaimed_role = DelegatedRole(
        name="unclaimed",
        keyids=[s["unclaimed-ed25519"].public_key.keyid],
        threshold=1,
        terminating=False,
        # NOTE: python-tuf globs match per path segment, so "*" alone only
        # matches single-segment paths; the second pattern covers crate files.
        paths=["*", "crates/*/*/*"],
    )
    delegations = Delegations(
        keys={
            s[n].public_key.keyid: pubkey(s[n])
            for n in ["serde-ecdsa", "hashed-ed25519", "unclaimed-ed25519"]
        },
        roles={r.name: r for r in [serde_role, hashed_role, unclaimed_role]},
        unrecognized_fields={"x-tuf-crates-delegations-extra": {"k": "v"}},
    )
    targets_md = Metadata(
        Targets(version=1, expires=EXPIRES, targets=top_targets, delegations=delegations),
        unrecognized_fields={"x-tuf-crates-envelope-extra": "unknown field next to signed/signatures"},
    )
    p_targets = mpath("1.targets.json")
    targets_bytes = sign_and_write(targets_md, [s["targets-ed25519"]], p_targets)

    # ---- snapshot ---------------------------------------------------------
    meta: dict[str, MetaFile] = {
        "targets.json": MetaFile.from_data(1, targets_bytes, HASH_ALGS),
        "serde.json": MetaFile.from_data(1, serde_bytes, HASH_ALGS),
        "hashed.json": MetaFile(1, unrecognized_fields={"x-tuf-crates-metafile-extra": 42}),
        "unclaimed.json": MetaFile(1, length=len(unclaimed_bytes)),
    }
    for name in bins:
        meta[f"{name}.json"] = MetaFile(1)
    # one bin also with hashes only (no length)
    first_bin = next(iter(bins))
    meta[f"{first_bin}.json"] = MetaFile(
        1, hashes={"sha256": hashlib.sha256(bin_files[first_bin][1]).hexdigest()}
    )
    snapshot_md = Metadata(Snapshot(version=1, expires=EXPIRES, meta=meta))
    snap_signer = s["snapshot-ecdsa"]
    p_snapshot = mpath("1.snapshot.json")
    snapshot_bytes = sign_and_write(
        snapshot_md,
        [snap_signer],
        p_snapshot,
        sig_extra={snap_signer.public_key.keyid: {"x-tuf-crates-signature-extra": "unknown field in a Signature"}},
        high_s={snap_signer.public_key.keyid: False},
    )

    # ---- timestamp --------------------------------------------------------
    ts_md = Metadata(
        Timestamp(
            version=1,
            expires=EXPIRES,
            snapshot_meta=MetaFile.from_data(1, snapshot_bytes, HASH_ALGS),
        )
    )
    p_ts = mpath("timestamp.json")
    sign_and_write(ts_md, [s["timestamp-ed25519"]], p_ts)

    # remove stale files
    for f in mdir.iterdir():
        if f.name not in expected_files:
            f.unlink()

    # ---- manifest ----------------------------------------------------------
    add_manifest(p_root1, "root", p_root1, note="initial trusted root; verified by itself")
    add_manifest(
        p_root2,
        "root",
        p_root1,
        also_delegator=rel(p_root2),
        note="root rotation: must verify against 1.root.json (old threshold) AND against itself (new threshold)",
    )
    add_manifest(
        p_root,
        "root",
        p_root1,
        also_delegator=rel(p_root2),
        note="byte copy of 2.root.json",
    )
    add_manifest(p_ts, "timestamp", p_root2)
    add_manifest(p_snapshot, "snapshot", p_root2)
    add_manifest(p_targets, "targets", p_root2)
    add_manifest(p_serde, "serde", p_targets)
    add_manifest(p_hashed, "hashed", p_targets)
    add_manifest(p_unclaimed, "unclaimed", p_targets)
    for name, (p, _) in bin_files.items():
        add_manifest(p, name, p_unclaimed, targets=sorted(bins[name]))


# --------------------------------------------------------------------------
# minimal repository


def build_minimal(s: dict[str, CryptoSigner]) -> dict[str, Path]:
    mdir = OUT / "minimal" / "metadata"
    mdir.mkdir(parents=True, exist_ok=True)
    root = Root(version=1, expires=EXPIRES, consistent_snapshot=False)
    for role in ["root", "targets", "snapshot", "timestamp"]:
        root.add_key(pubkey(s[f"minimal-{role}"]), role)
    p_root = mdir / "root.json"
    sign_and_write(Metadata(root), [s["minimal-root"]], p_root)

    targets = Targets(version=1, expires=EXPIRES, targets={"hello.txt": target_file("hello.txt")})
    p_targets = mdir / "targets.json"
    sign_and_write(Metadata(targets), [s["minimal-targets"]], p_targets)

    snapshot = Snapshot(version=1, expires=EXPIRES, meta={"targets.json": MetaFile(1)})
    p_snapshot = mdir / "snapshot.json"
    sign_and_write(Metadata(snapshot), [s["minimal-snapshot"]], p_snapshot)

    ts = Timestamp(version=1, expires=EXPIRES, snapshot_meta=MetaFile(1))
    p_ts = mdir / "timestamp.json"
    sign_and_write(Metadata(ts), [s["minimal-timestamp"]], p_ts)

    for f in mdir.iterdir():
        if f.name not in {"root.json", "targets.json", "snapshot.json", "timestamp.json"}:
            f.unlink()

    add_manifest(p_root, "root", p_root, note="initial trusted root; verified by itself")
    add_manifest(p_ts, "timestamp", p_root)
    add_manifest(p_snapshot, "snapshot", p_root)
    add_manifest(p_targets, "targets", p_root)
    return {"root": p_root, "targets": p_targets, "snapshot": p_snapshot, "timestamp": p_ts}


# --------------------------------------------------------------------------
# invalid metadata


def build_invalid(s: dict[str, CryptoSigner], minimal: dict[str, Path]) -> None:
    idir = OUT / "invalid"
    if idir.exists():
        shutil.rmtree(idir)
    idir.mkdir(parents=True)

    targets_bytes = minimal["targets"].read_bytes()
    root_bytes = minimal["root"].read_bytes()
    cases: list[dict[str, Any]] = []

    def edit(data: bytes, old: str, new: str) -> bytes:
        o, n = old.encode(), new.encode()
        assert data.count(o) == 1, (old, data.count(o))
        return data.replace(o, n)

    def resign(base: bytes, mutate, signer_name: str) -> bytes:
        """Edit the parsed dict, re-sign over python's canonical form."""
        d = json.loads(base)
        mutate(d["signed"])
        canon = encode_canonical(d["signed"]).encode("utf-8")
        sig = s[signer_name].sign(canon)
        d["signatures"] = [sig.to_dict()]
        return json.dumps(d, separators=(",", ":"), sort_keys=True).encode()

    def add(name: str, data: bytes, role: str, description: str, how: str) -> None:
        (idir / name).write_bytes(data)
        cases.append(
            {"file": f"invalid/{name}", "role": role, "description": description, "crafted": how}
        )

    tb = targets_bytes
    assert tb.startswith(b'{"signatures":')
    # duplicate key: python's json.loads keeps the LAST occurrence; put a
    # different value first so a first-wins parser sees version 2.
    add(
        "duplicate-key-in-signed.json",
        edit(tb, '"signed":{"_type":"targets",', '"signed":{"_type":"targets","version":2,'),
        "targets",
        'duplicate object key "version" inside signed (first 2, last 1); signature is over version 1',
        "string edit (signature still valid for python's last-wins parse)",
    )
    add(
        "duplicate-key-same-value.json",
        edit(tb, '"signed":{"_type":"targets",', '"signed":{"_type":"targets","_type":"targets",'),
        "targets",
        'duplicate object key "_type" inside signed with identical values',
        "string edit (signature still valid)",
    )
    add(
        "float-version.json",
        edit(tb, '"version":1}', '"version":1.0}'),
        "targets",
        "version is a JSON float (1.0)",
        "string edit",
    )
    add(
        "type-mismatch-wrong-case.json",
        edit(tb, '"_type":"targets"', '"_type":"Targets"'),
        "targets",
        '_type "Targets" (wrong case) is not a known metadata type',
        "string edit",
    )
    add(
        "type-mismatch-snapshot-as-targets.json",
        minimal["snapshot"].read_bytes(),
        "targets",
        "a valid, correctly signed snapshot.json served where targets metadata is expected",
        "copy of minimal/metadata/snapshot.json",
    )
    add(
        "spec-version-2.json",
        resign(tb, lambda d: d.update(spec_version="2.0.0"), "minimal-targets"),
        "targets",
        'spec_version "2.0.0" (unsupported major version)',
        "re-signed",
    )
    add(
        "expires-no-z.json",
        resign(tb, lambda d: d.update(expires="2099-01-01T00:00:00"), "minimal-targets"),
        "targets",
        "expires without the trailing Z",
        "re-signed",
    )
    add(
        "expires-fractional-seconds.json",
        resign(tb, lambda d: d.update(expires="2099-01-01T00:00:00.5Z"), "minimal-targets"),
        "targets",
        "expires with fractional seconds",
        "re-signed",
    )
    add(
        "expires-offset.json",
        resign(tb, lambda d: d.update(expires="2099-01-01T00:00:00+00:00"), "minimal-targets"),
        "targets",
        "expires with +00:00 offset instead of Z",
        "re-signed",
    )
    add(
        "negative-version.json",
        resign(tb, lambda d: d.update(version=-1), "minimal-targets"),
        "targets",
        "version -1",
        "re-signed",
    )
    add(
        "zero-version.json",
        resign(tb, lambda d: d.update(version=0), "minimal-targets"),
        "targets",
        "version 0",
        "re-signed",
    )
    add(
        "version-above-u64.json",
        resign(tb, lambda d: d.update(version=2**64), "minimal-targets"),
        "targets",
        "version 18446744073709551616 (2^64, does not fit in u64)",
        "re-signed",
    )
    add(
        "negative-target-length.json",
        resign(tb, lambda d: d["targets"]["hello.txt"].update(length=-1), "minimal-targets"),
        "targets",
        "target length -1",
        "re-signed",
    )
    add(
        "empty-target-hashes.json",
        resign(tb, lambda d: d["targets"]["hello.txt"].update(hashes={}), "minimal-targets"),
        "targets",
        "target with empty hashes object",
        "re-signed",
    )

    def dup_sig(data: bytes) -> bytes:
        d = json.loads(data)
        d["signatures"] = d["signatures"] * 2
        return json.dumps(d, separators=(",", ":"), sort_keys=True).encode()

    add(
        "duplicate-signature-keyid.json",
        dup_sig(tb),
        "targets",
        "two signature objects with the same keyid (both valid)",
        "envelope edit",
    )

    def with_delegation(role: dict[str, Any] | None = None, succinct: dict[str, Any] | None = None):
        keyid = s["minimal-targets"].public_key.keyid

        def m(d: dict[str, Any]) -> None:
            dlg: dict[str, Any] = {"keys": {keyid: s["minimal-targets"].public_key.to_dict()}}
            if role is not None:
                dlg["roles"] = [role]
            if succinct is not None:
                dlg["succinct_roles"] = succinct
            d["delegations"] = dlg

        return resign(tb, m, "minimal-targets")

    keyid = s["minimal-targets"].public_key.keyid
    base_role = {"name": "r", "keyids": [keyid], "threshold": 1, "terminating": False}
    add(
        "delegation-paths-and-prefixes.json",
        with_delegation({**base_role, "paths": ["*"], "path_hash_prefixes": ["ab"]}),
        "targets",
        "delegated role with both paths and path_hash_prefixes",
        "re-signed",
    )
    add(
        "delegation-threshold-zero.json",
        with_delegation({**base_role, "threshold": 0, "paths": ["*"]}),
        "targets",
        "delegated role threshold 0",
        "re-signed",
    )
    add(
        "delegation-nonunique-keyids.json",
        with_delegation({**base_role, "keyids": [keyid, keyid], "paths": ["*"]}),
        "targets",
        "delegated role with the same keyid listed twice",
        "re-signed",
    )
    add(
        "delegation-top-level-name.json",
        with_delegation({**base_role, "name": "snapshot", "paths": ["*"]}),
        "targets",
        'delegated role named "snapshot" (top-level role name)',
        "re-signed",
    )
    add(
        "succinct-bit-length-33.json",
        with_delegation(succinct={"keyids": [keyid], "threshold": 1, "bit_length": 33, "name_prefix": "bin"}),
        "targets",
        "succinct_roles bit_length 33 (must be 1..32)",
        "re-signed",
    )
    add(
        "root-missing-role.json",
        resign(root_bytes, lambda d: d["roles"].pop("timestamp"), "minimal-root"),
        "root",
        "root without a timestamp role",
        "re-signed",
    )
    add(
        "root-threshold-zero.json",
        resign(root_bytes, lambda d: d["roles"]["targets"].update(threshold=0), "minimal-root"),
        "root",
        "root role entry with threshold 0",
        "re-signed",
    )

    # Record what python-tuf does with each file.
    root_md = Metadata.from_bytes(root_bytes)
    for case in cases:
        data = (OUT / case["file"]).read_bytes()
        case["python_tuf_parse_and_verify"] = python_parse_and_verify(
            data, case["role"], root_md
        )
        case["python_tuf_trusted_metadata_set"] = python_trusted_set(
            data, case["role"], minimal
        )

    (idir / "index.json").write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [
        "# Invalid metadata (python-tuf fixtures)",
        "",
        "Generated by `tests/python/generate_fixtures.py` from `minimal/metadata/`; all",
        "files are signed with the minimal repository's keys (`crafted` says whether a",
        "file was string-edited after signing or re-signed over python's canonical",
        "form of the edited `signed`). tuf-crates must reject every one of them.",
        "The python-tuf columns are observed by the generator (python-tuf 7.0.1):",
        "*parse+verify* = `Metadata.from_bytes` then `verify_delegate` against",
        "`minimal/metadata/root.json` (or the file itself for root);",
        "*TrustedMetadataSet* = the ngclient update sequence with this file",
        "substituted for the role. `index.json` has the same data.",
        "",
        "| file | description | crafted | python-tuf parse+verify | python-tuf TrustedMetadataSet |",
        "|---|---|---|---|---|",
    ]
    for c in cases:
        cells = [
            f"`{c['file'].split('/', 1)[1]}`",
            c["description"],
            c["crafted"],
            c["python_tuf_parse_and_verify"],
            c["python_tuf_trusted_metadata_set"],
        ]
        lines.append("| " + " | ".join(x.replace("|", "\\|").replace("\n", " ") for x in cells) + " |")
    (idir / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def describe_exc(e: BaseException) -> str:
    parts = []
    cur: BaseException | None = e
    while cur is not None:
        msg = str(cur)
        if len(msg) > 160:
            msg = msg[:157] + "..."
        parts.append(f"{type(cur).__name__}: {msg}" if msg else type(cur).__name__)
        cur = cur.__cause__ or cur.__context__
    return " <- ".join(parts)


def python_parse_and_verify(data: bytes, role: str, root_md: Metadata) -> str:
    try:
        md = Metadata.from_bytes(data)
    except Exception as e:  # noqa: BLE001
        return f"REJECTED at parse: {describe_exc(e)}"
    try:
        delegator = md if (role == "root" and md.signed.type == "root") else root_md
        delegator.verify_delegate(role, md)
    except Exception as e:  # noqa: BLE001
        return f"parsed, REJECTED at verify: {describe_exc(e)}"
    return f"ACCEPTED (parsed as {md.signed.type} v{md.signed.version!r}, signature valid)"


def python_trusted_set(data: bytes, role: str, minimal: dict[str, Path]) -> str:
    try:
        if role == "root":
            TrustedMetadataSet(data, EnvelopeType.METADATA)
            return "ACCEPTED as trusted root"
        tms = TrustedMetadataSet(minimal["root"].read_bytes(), EnvelopeType.METADATA)
        for r in ["timestamp", "snapshot", "targets"]:
            blob = data if r == role else minimal[r].read_bytes()
            getattr(tms, f"update_{r}")(blob)
        return "ACCEPTED"
    except Exception as e:  # noqa: BLE001
        return f"REJECTED: {describe_exc(e)}"


# --------------------------------------------------------------------------


def main() -> int:
    os.chdir(REPO_ROOT)
    OUT.mkdir(parents=True, exist_ok=True)
    signers = {name: load_or_create_signer(name) for name in KEY_SPECS}
    build_full(signers)
    minimal = build_minimal(signers)
    build_invalid(signers, minimal)
    (OUT / "manifest.json").write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(manifest)} metadata files (+ invalid/) under {OUT.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
