#!/usr/bin/env python3
"""Check with python-tuf that TUF metadata written by tuf-crates is accepted.

Usage::

  verify_repository.py repo --metadata-dir DIR [--root FILE]
      [--target PATH ...] [--targets-dir DIR] [--no-target-hash-prefix]
      [--reference-time 2030-01-01T00:00:00Z] [--lenient]

      Trust --root (default DIR/1.root.json if present, else DIR/root.json),
      update root through DIR/<N>.root.json, then load timestamp.json,
      snapshot, targets and every delegated targets role (breadth-first from
      targets, through its delegator, including succinct hash bins) with
      python-tuf's TrustedMetadataSet, i.e. the ngclient's checks: signature
      thresholds, root rotation, versions, expiry, length/hashes from
      timestamp/snapshot. File names follow the ngclient: "<N>.<role>.json"
      with consistent snapshots (timestamp is always "timestamp.json"),
      "<role>.json" otherwise; role names are URL-quoted like the ngclient.

      By default it is an error if a delegated role is missing from snapshot
      meta or a snapshot meta entry is not reachable through the delegation
      tree; --lenient reports these as warnings instead.

      --target PATH (repeatable) additionally resolves PATH with
      tuf.ngclient.Updater (preorder depth-first delegation walk, the real
      client code) using a fetcher that reads from DIR; if --targets-dir is
      given the target file is also "downloaded" from there and its length and
      hashes verified (with consistent snapshots the file name is
      "<sha256>.<basename>" unless --no-target-hash-prefix). A target that is
      not found is a verification failure.

  verify_repository.py signature --delegator FILE --role NAME --metadata FILE
      Load both files with Metadata.from_bytes and run
      delegator.verify_delegate(NAME, metadata).

Prints one JSON object on stdout: {"ok": true, ...} or
{"ok": false, "error": "<Type>: <message>", ...}. Exit status: 0 verified,
1 verification failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn
from urllib import parse

from tuf.api import exceptions
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig
from tuf.ngclient._internal.trusted_metadata_set import TrustedMetadataSet
from tuf.ngclient.config import EnvelopeType

MAX_ROOT_ROTATIONS = UpdaterConfig().max_root_rotations

METADATA_URL = "tuf-test://metadata/"
TARGETS_URL = "tuf-test://targets/"


class UsageError(Exception):
    pass


class VerifyError(Exception):
    """Verification failure with a short explanation (no python exception)."""


def describe(e: BaseException) -> str:
    msg = str(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def causes(e: BaseException) -> list[str]:
    out = []
    cur = e.__cause__ or e.__context__
    seen = set()
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        out.append(describe(cur))
        cur = cur.__cause__ or cur.__context__
    return out


def emit(obj: dict[str, Any], code: int) -> NoReturn:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")
    sys.stdout.flush()
    sys.exit(code)


def fail(e: BaseException, code: int, **extra: Any) -> NoReturn:
    obj: dict[str, Any] = {"ok": False, "error": describe(e)}
    c = causes(e)
    if c:
        obj["causes"] = c
    obj.update(extra)
    emit(obj, code)


def read(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def metadata_name(role: str, version: int | None) -> str:
    encoded = parse.quote(role, "")  # as tuf.ngclient.Updater does
    return f"{version}.{encoded}.json" if version is not None else f"{encoded}.json"


def parse_time(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError as e:
        raise UsageError(f"--reference-time: {e}") from e


# --------------------------------------------------------------------------
# repo


class DirFetcher(FetcherInterface):
    """Serves metadata from a directory and target files from another."""

    def __init__(self, metadata_dir: Path, targets_dir: Path | None):
        self.metadata_dir = metadata_dir
        self.targets_dir = targets_dir
        self.fetched: list[str] = []

    def _fetch(self, url: str) -> Iterator[bytes]:
        if url.startswith(METADATA_URL):
            # metadata role names are URL-quoted by the Updater
            name = parse.unquote(url[len(METADATA_URL):])
            path = self.metadata_dir / name
        elif url.startswith(TARGETS_URL) and self.targets_dir is not None:
            # target paths are NOT quoted by the Updater
            path = self.targets_dir / url[len(TARGETS_URL):]
        else:
            raise exceptions.DownloadHTTPError(f"unexpected url {url}", 404)
        if not path.is_file():
            raise exceptions.DownloadHTTPError(f"not found: {path}", 404)
        self.fetched.append(str(path))
        return iter([read(path)])


def cmd_repo(args: argparse.Namespace) -> None:
    mdir = Path(args.metadata_dir)
    if not mdir.is_dir():
        raise UsageError(f"--metadata-dir {mdir} is not a directory")
    if args.root:
        root_path = Path(args.root)
    elif (mdir / "1.root.json").is_file():
        root_path = mdir / "1.root.json"
    else:
        root_path = mdir / "root.json"
    if not root_path.is_file():
        raise UsageError(f"trusted root {root_path} not found")
    targets_dir = Path(args.targets_dir) if args.targets_dir else None
    if targets_dir is not None and not targets_dir.is_dir():
        raise UsageError(f"--targets-dir {targets_dir} is not a directory")

    result: dict[str, Any] = {"ok": True, "metadata_dir": str(mdir), "trusted_root": str(root_path)}
    loaded: list[dict[str, Any]] = []
    warnings: list[str] = []
    stage = "root"
    current_file = str(root_path)
    try:
        trusted_root_bytes = read(root_path)
        tms = TrustedMetadataSet(trusted_root_bytes, EnvelopeType.METADATA)
        if args.reference_time:
            tms.reference_time = parse_time(args.reference_time)
        loaded.append({"role": "root", "version": tms.root.version, "file": current_file, "delegator": "root (self)"})
        root_versions = [tms.root.version]

        # root rotation, like Updater._load_root (stop at first missing file)
        for _ in range(MAX_ROOT_ROTATIONS):
            nxt = tms.root.version + 1
            p = mdir / metadata_name("root", nxt)
            if not p.is_file():
                break
            current_file = str(p)
            tms.update_root(read(p))
            root_versions.append(tms.root.version)
            loaded.append({"role": "root", "version": tms.root.version, "file": current_file, "delegator": f"root v{nxt - 1} + self"})
        root = tms.root
        consistent = bool(root.consistent_snapshot)
        result["root_versions"] = root_versions
        result["consistent_snapshot"] = consistent

        stage = "timestamp"
        p = mdir / metadata_name(Timestamp.type, None)
        current_file = str(p)
        ts = tms.update_timestamp(read(p))
        loaded.append({"role": "timestamp", "version": ts.version, "file": current_file, "delegator": "root"})

        stage = "snapshot"
        snap_meta = ts.snapshot_meta
        p = mdir / metadata_name(Snapshot.type, snap_meta.version if consistent else None)
        current_file = str(p)
        snap = tms.update_snapshot(read(p))
        loaded.append({"role": "snapshot", "version": snap.version, "file": current_file, "delegator": "root"})

        # targets + delegated roles, breadth first
        queue: deque[tuple[str, str]] = deque([(Targets.type, Root.type)])
        done: set[tuple[str, str]] = set()
        reached: set[str] = set()
        missing: list[str] = []
        while queue:
            role, delegator = queue.popleft()
            if (role, delegator) in done:
                continue
            done.add((role, delegator))
            stage = role
            meta = snap.meta.get(f"{role}.json")
            if meta is None:
                if role == Targets.type:
                    raise VerifyError("snapshot has no entry for targets.json")
                missing.append(f"{role} (delegated by {delegator})")
                continue
            reached.add(f"{role}.json")
            p = mdir / metadata_name(role, meta.version if consistent else None)
            current_file = str(p)
            md = tms.update_delegated_targets(read(p), role, delegator)
            loaded.append({"role": role, "version": md.version, "file": current_file, "delegator": delegator, "targets": len(md.targets)})
            if md.delegations is not None:
                if md.delegations.roles is not None:
                    children = list(md.delegations.roles)
                else:
                    assert md.delegations.succinct_roles is not None
                    children = list(md.delegations.succinct_roles.get_roles())
                queue.extend((c, role) for c in children)

        stage = "completeness"
        unreached = sorted(set(snap.meta) - reached)
        problems = []
        if missing:
            problems.append(f"delegated roles missing from snapshot meta: {missing}")
        if unreached:
            problems.append(f"snapshot meta entries not reachable by delegation: {unreached}")
        if problems:
            if not args.lenient:
                raise VerifyError("; ".join(problems))
            warnings.extend(problems)

        result["roles"] = loaded
        result["role_versions"] = {r["role"]: r["version"] for r in loaded}

        if args.target:
            stage = "targets-resolution"
            current_file = None
            result["targets"] = resolve_targets(args, mdir, targets_dir, trusted_root_bytes)
    except (UsageError, SystemExit):
        raise
    except Exception as e:  # noqa: BLE001 - any python-tuf rejection
        fail(e, 1, stage=stage, file=current_file, roles=loaded)

    if warnings:
        result["warnings"] = warnings
    emit(result, 0)


def resolve_targets(
    args: argparse.Namespace, mdir: Path, targets_dir: Path | None, trusted_root: bytes
) -> dict[str, Any]:
    """Resolve each target with a fresh tuf.ngclient.Updater (empty cache), so
    the metadata fetched for it shows the delegation walk the client did."""
    out: dict[str, Any] = {}
    for path in args.target:
        with tempfile.TemporaryDirectory(prefix="tuf-crates-verify-") as tmp:
            fetcher = DirFetcher(mdir, targets_dir)
            config = UpdaterConfig(prefix_targets_with_hash=not args.no_target_hash_prefix)
            cache = Path(tmp, "metadata")
            cache.mkdir()
            updater = Updater(
                metadata_dir=str(cache),
                metadata_base_url=METADATA_URL,
                target_dir=str(Path(tmp, "targets")),
                target_base_url=TARGETS_URL,
                fetcher=fetcher,
                config=config,
                bootstrap=trusted_root,
            )
            trusted = updater._trusted_set  # noqa: SLF001
            if args.reference_time:
                # the Updater creates its TrustedMetadataSet in __init__
                trusted.reference_time = parse_time(args.reference_time)
            updater.refresh()
            info = updater.get_targetinfo(path)
            if info is None:
                raise VerifyError(f"target {path!r} not found through the delegation tree")
            # the walk stops at the role that lists the target: the last one loaded
            walk = [name for name, signed in trusted._trusted_set.items()  # noqa: SLF001
                    if isinstance(signed, Targets)]
            entry: dict[str, Any] = {
                "role": walk[-1],
                "roles_visited": walk,
                "length": info.length,
                "hashes": info.hashes,
                "custom": info.custom,
                "unrecognized_fields": info.unrecognized_fields,
                "metadata_fetched": [Path(p).name for p in fetcher.fetched],
            }
            if targets_dir is not None:
                local = updater.download_target(info)
                entry["downloaded"] = True
                entry["downloaded_length"] = os.path.getsize(local)
            out[path] = entry
    return out


# --------------------------------------------------------------------------
# signature


def cmd_signature(args: argparse.Namespace) -> None:
    for f in (args.delegator, args.metadata):
        if not Path(f).is_file():
            raise UsageError(f"{f} not found")
    stage = "load-delegator"
    try:
        delegator = Metadata.from_bytes(read(Path(args.delegator)))
        stage = "load-metadata"
        md = Metadata.from_bytes(read(Path(args.metadata)))
        stage = "verify"
        if delegator.signed.type not in (Root.type, Targets.type):
            raise VerifyError(f"delegator is {delegator.signed.type}, not root or targets")
        vr = delegator.signed.get_verification_result(args.role, md.signed_bytes, md.signatures)
        details = {
            "role": args.role,
            "type": md.signed.type,
            "version": md.signed.version,
            "threshold": vr.threshold,
            "signed_by": sorted(vr.signed),
            "not_signed_by": sorted(vr.unsigned),
        }
        # the actual check requested (raises UnsignedMetadataError)
        try:
            delegator.verify_delegate(args.role, md)
        except Exception as e:  # noqa: BLE001
            fail(e, 1, stage=stage, **details)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001
        fail(e, 1, stage=stage)
    emit({"ok": True, **details}, 0)


# --------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        emit({"ok": False, "error": f"UsageError: {message}"}, 2)


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p_repo = sub.add_parser("repo", help="verify a whole repository with TrustedMetadataSet")
    p_repo.add_argument("--metadata-dir", required=True)
    p_repo.add_argument("--root", help="trusted root (default DIR/1.root.json, else DIR/root.json)")
    p_repo.add_argument("--target", action="append", default=[], help="resolve target path (repeatable)")
    p_repo.add_argument("--targets-dir", help="directory with target files to download/verify")
    p_repo.add_argument("--no-target-hash-prefix", action="store_true",
                        help="target files are not stored as <hash>.<name> even with consistent snapshots")
    p_repo.add_argument("--reference-time", help="check expiry against this UTC time (YYYY-MM-DDTHH:MM:SSZ)")
    p_repo.add_argument("--lenient", action="store_true",
                        help="missing/unreachable delegated roles are warnings, not errors")

    p_sig = sub.add_parser("signature", help="run delegator.verify_delegate(role, metadata)")
    p_sig.add_argument("--delegator", required=True)
    p_sig.add_argument("--role", required=True)
    p_sig.add_argument("--metadata", required=True)

    args = parser.parse_args()
    try:
        if args.command == "repo":
            cmd_repo(args)
        else:
            cmd_signature(args)
    except UsageError as e:
        emit({"ok": False, "error": describe(e)}, 2)


if __name__ == "__main__":
    main()
