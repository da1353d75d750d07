"""Evidence bundles: events with their c2sp.org/tlog-proof receipts against one checkpoint, checkable offline.

A bundle is a set of files (written as a zip): the exact entry bytes of each
event, one tlog-proof per event whose embedded checkpoint is byte for byte the
bundle's `checkpoint` (log signature plus witness cosignatures), the log and
witness vkeys, a README and a manifest.

Invariant: every byte of a bundle is checked by `verify_bundle`. Entries are
bound by their proofs to the checkpoint, the checkpoint by signatures to the
keys; the manifest must be the RFC 8785 encoding of itself, carry the
SHA-256 of that encoding without its `digest` member, and list the SHA-256 of
every other file; the README must be exactly the text rendered from the
manifest. So a changed byte is blamed on the file that holds it: the manifest
if its own digest fails, else the file whose SHA-256 differs from the list.
The manifest's `query` and `created` are the exporter's word only: they are
covered against accidental change, not attested by the log.
No I/O except the zip helpers at the bottom.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .checkpoint import Checkpoint, parse_checkpoint
from .cosignature import parse_witness_key
from .event import is_out_of_line
from .jcs import canonical_json
from .merkle import leaf_hash
from .note import NoteError, Verifier, b64encode, open_note, parse_verifier
from .tlogproof import TlogProof, TlogProofError, parse_tlog_proof, verify_tlog_proof

__all__ = [
    "FORMAT",
    "BundleReport",
    "EvidenceError",
    "EvidenceItem",
    "assemble_bundle",
    "blob_digests",
    "read_zip",
    "verify_bundle",
    "verify_zip",
    "write_zip",
    "zip_bytes",
]

FORMAT = "sealtrail-evidence/v1"
MANIFEST = "manifest.json"
README = "README.md"
CHECKPOINT = "checkpoint"
LOG_VKEY = "log.vkey"
WITNESS_VKEYS = "witnesses.vkeys"
MAX_FILES = 1_000_000
MAX_BYTES = 4 * 1024**3
_NAME = re.compile(
    r"(manifest\.json|README\.md|checkpoint|log\.vkey|witnesses\.vkeys"
    r"|events/(0|[1-9][0-9]*)\.json|proofs/(0|[1-9][0-9]*)\.tlog-proof|blobs/sha256-[0-9a-f]{64})"
)


class EvidenceError(ValueError):
    """A bundle does not check out; `file` names the file at fault, `index` the entry if one is."""

    def __init__(self, file: str, message: str, index: int | None = None) -> None:
        self.file = file
        self.index = index
        where = f"{file} (entry {index})" if index is not None else file
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class EvidenceItem:
    """One event for a bundle: its index, entry bytes (None once redacted) and the audit path."""

    index: int
    entry: bytes | None
    leaf_hash: bytes
    proof: Sequence[bytes]


@dataclass(frozen=True)
class BundleReport:
    origin: str
    size: int
    root: bytes
    events: int
    redacted: int
    cosigners: tuple[str, ...]
    query: str | None
    created: str
    warnings: list[str] = field(default_factory=list)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _event_file(index: int) -> str:
    return f"events/{index}.json"


def _proof_file(index: int) -> str:
    return f"proofs/{index}.tlog-proof"


def blob_digests(entry: bytes) -> list[str]:
    """`sha256:<hex>` digests of out-of-line raw payloads this entry refers to."""
    try:
        raw = orjson.loads(entry).get("raw")
    except (orjson.JSONDecodeError, AttributeError):
        return []
    return [raw["digest"]] if is_out_of_line(raw) else []


def assemble_bundle(
    *,
    checkpoint_note: bytes,
    log_vkey: str,
    witness_vkeys: Sequence[str],
    items: Iterable[EvidenceItem],
    blobs: Mapping[str, bytes],
    query: str | None,
    created: str,
) -> dict[str, bytes]:
    """The files of a bundle. `checkpoint_note` is the signed (and cosigned) checkpoint every proof is against;
    `blobs` maps `sha256:<hex>` digests to the out-of-line payloads the entries refer to."""
    checkpoint = _parse_checkpoint_note(checkpoint_note)
    files: dict[str, bytes] = {
        CHECKPOINT: checkpoint_note,
        LOG_VKEY: (log_vkey.strip() + "\n").encode(),
        WITNESS_VKEYS: "".join(v.strip() + "\n" for v in witness_vkeys).encode(),
    }
    events: list[dict[str, Any]] = []
    blob_files: list[str] = []
    for item in sorted(items, key=lambda i: i.index):
        if not 0 <= item.index < checkpoint.size:
            raise ValueError(f"entry {item.index} is not covered by the checkpoint of size {checkpoint.size}")
        proof = TlogProof(item.index, item.proof, checkpoint_note, extra=item.leaf_hash)
        files[_proof_file(item.index)] = proof.encode()
        record: dict[str, Any] = {
            "index": item.index,
            "leaf_hash": b64encode(item.leaf_hash),
            "proof": _proof_file(item.index),
            "event": None,
        }
        if item.entry is not None:
            files[_event_file(item.index)] = item.entry
            record["event"] = _event_file(item.index)
            for digest in blob_digests(item.entry):
                name = "blobs/" + digest.replace(":", "-")
                if digest in blobs and name not in files:
                    files[name] = blobs[digest]
                    blob_files.append(name)
        events.append(record)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "origin": checkpoint.origin,
        "created": created,
        "query": query,
        "checkpoint": {"file": CHECKPOINT, "size": checkpoint.size, "root": b64encode(checkpoint.root)},
        "log_vkey": LOG_VKEY,
        "witness_vkeys": WITNESS_VKEYS,
        "events": events,
        "blobs": sorted(blob_files),
    }
    files[README] = render_readme(manifest).encode()
    manifest["files"] = {name: _sha256(data) for name, data in sorted(files.items())}
    manifest["digest"] = _sha256(canonical_json(manifest))
    files[MANIFEST] = canonical_json(manifest)
    return files


def _parse_checkpoint_note(note: bytes) -> Checkpoint:
    body, _, _ = note.partition(b"\n\n")
    try:
        return parse_checkpoint(body.decode("utf-8") + "\n")
    except (NoteError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a checkpoint: {exc}") from None


def render_readme(manifest: Mapping[str, Any]) -> str:
    """The bundle's README: what is inside and how to check it without sealtrail. Deterministic in the manifest."""
    cp = manifest["checkpoint"]
    events = manifest["events"]
    redacted = sum(1 for e in events if e["event"] is None)
    first = events[0]["index"] if events else 0
    query = manifest["query"] if manifest["query"] is not None else "(events chosen by index)"
    lines = [
        "# Audit evidence from a sealtrail log",
        "",
        f"Log: `{manifest['origin']}`. Exported {manifest['created']} for the query: `{query}`.",
        f"It holds {len(events)} events ({redacted} of them redacted: only their hash remains), each with a",
        f"proof that it is entry N of the log's Merkle tree of size {cp['size']} (root `{cp['root']}`).",
        "",
        "## What is inside",
        "",
        "- `checkpoint`: the log's signed checkpoint (c2sp.org/tlog-checkpoint as a c2sp.org/signed-note): origin,",
        "  tree size and root hash, signed by the log and cosigned by witnesses (c2sp.org/tlog-cosignature). Witnesses",
        "  are independent parties that cosign a checkpoint only if it extends every checkpoint they saw before,",
        "  so the log could not have shown anyone a different history.",
        "- `log.vkey`, `witnesses.vkeys`: the public keys, as Go's golang.org/x/mod/sumdb/note writes them. Compare",
        "  them with keys you got from the log operator and the witnesses through another channel.",
        "- `events/N.json`: entry N exactly as it was hashed into the tree (RFC 8785 canonical JSON).",
        "- `proofs/N.tlog-proof`: a c2sp.org/tlog-proof@v1 file for entry N: its leaf hash (`extra`), its index,",
        "  the RFC 6962 inclusion proof, then the checkpoint above.",
        "- `blobs/sha256-HEX`: raw payloads too large for an entry; the entry names their SHA-256.",
        "- `manifest.json`: the SHA-256 of every other file, in RFC 8785 canonical JSON.",
        "",
        "## Check it with sealtrail",
        "",
        "    sealtrail evidence verify bundle.zip --vkey 'KEY YOU TRUST'",
        "",
        "## Check it by hand",
        "",
        "1. `sha256sum` each file and compare with `manifest.json`.",
        "2. Verify the checkpoint's signature with the log's key, and each witness cosignature (message",
        "   `cosignature/v1\\ntime T\\n` followed by the checkpoint text), e.g. with Go's sumdb/note package.",
        f"3. For an event, say entry {first}: the leaf hash is SHA-256(0x00 || bytes of events/{first}.json); it",
        "   must equal the proof's `extra` line. Fold the proof's hashes into it as RFC 9162 §2.1.3.2 says",
        "   (Go: golang.org/x/mod/sumdb/tlog CheckRecord) and compare with the checkpoint's root:",
        "",
        f'       sealtrail verify-proof proofs/{first}.tlog-proof --vkey "$(cat log.vkey)" --entry events/{first}.json',
        "",
        "4. An entry whose raw payload is `{digest, size}` has its payload in `blobs/`; check its SHA-256.",
        "",
        "A redacted event has no `events/` file: retention or an erasure request removed its body (and its",
        "random salt, so it cannot be guessed back), but its leaf hash still proves where it stood.",
        "",
    ]
    return "\n".join(lines)


def verify_bundle(
    files: Mapping[str, bytes],
    *,
    trusted_vkey: str | None = None,
    trusted_witnesses: Sequence[str] | None = None,
    min_cosignatures: int = 0,
) -> BundleReport:
    """Check every file of a bundle; raise EvidenceError naming the first file (and entry) at fault.

    `trusted_vkey` is the log key the auditor trusts (default: the bundled one,
    with a warning); `trusted_witnesses` likewise; at least `min_cosignatures`
    of them must have cosigned the checkpoint.
    """
    warnings: list[str] = []
    manifest = _manifest(files)
    listed: Mapping[str, str] = manifest["files"]
    for name in sorted(set(files) - {MANIFEST}):
        if name not in listed:
            raise EvidenceError(name, "is not listed in manifest.json: it was added to the bundle")
    for name, digest in listed.items():
        if name not in files:
            raise EvidenceError(name, "is listed in manifest.json but missing from the bundle")
        if _sha256(files[name]) != digest:
            raise EvidenceError(
                name, "its SHA-256 differs from the one in manifest.json: the file was changed", _entry_of(name)
            )
    if files[README].decode("utf-8", "replace") != render_readme(manifest):
        raise EvidenceError(README, "differs from the text the manifest describes: one of the two was changed")

    log_verifier = _log_verifier(files, trusted_vkey, warnings)
    witnesses = _witness_verifiers(files, trusted_witnesses, warnings)
    note = files[CHECKPOINT]
    try:
        opened = open_note(note, [log_verifier, *witnesses])
        checkpoint = parse_checkpoint(opened.text)
    except NoteError as exc:
        raise EvidenceError(CHECKPOINT, str(exc)) from None
    names = {sig.name for sig in opened.verified}
    if log_verifier.name not in names:
        raise EvidenceError(CHECKPOINT, f"is not signed by the log key {log_verifier.name}")
    if checkpoint.origin != log_verifier.name:
        raise EvidenceError(CHECKPOINT, f"origin {checkpoint.origin!r} is not the log key's name")
    cosigners = tuple(sorted(sig.name for sig in opened.verified if sig.name != log_verifier.name))
    if len(cosigners) < min_cosignatures:
        raise EvidenceError(
            CHECKPOINT, f"has {len(cosigners)} valid witness cosignatures, fewer than the {min_cosignatures} required"
        )
    declared = manifest["checkpoint"]
    if (manifest["origin"], declared["size"], declared["root"]) != (
        checkpoint.origin,
        checkpoint.size,
        b64encode(checkpoint.root),
    ):
        raise EvidenceError(MANIFEST, "its origin, size or root differs from the checkpoint")

    expected_files = {MANIFEST, README, CHECKPOINT, LOG_VKEY, WITNESS_VKEYS, *manifest["blobs"]}
    redacted = 0
    for record in manifest["events"]:
        index, proof_name, event_name = record["index"], record["proof"], record["event"]
        if proof_name != _proof_file(index) or event_name not in (None, _event_file(index)):
            raise EvidenceError(MANIFEST, "names the wrong files for an entry", index)
        expected_files.add(proof_name)
        proof_bytes = files.get(proof_name)
        if proof_bytes is None:
            raise EvidenceError(proof_name, "is missing from the bundle", index)
        try:
            proof = parse_tlog_proof(proof_bytes)
        except TlogProofError as exc:
            raise EvidenceError(proof_name, str(exc), index) from None
        if proof.index != index:
            raise EvidenceError(proof_name, f"proves entry {proof.index}, not {index}", index)
        if proof.checkpoint != note:
            raise EvidenceError(proof_name, "embeds a checkpoint other than the bundle's `checkpoint`", index)
        if proof.extra is None or b64encode(proof.extra) != record["leaf_hash"]:
            raise EvidenceError(proof_name, "its leaf hash (extra line) differs from the manifest", index)
        entry = None
        if event_name is None:
            redacted += 1
        else:
            expected_files.add(event_name)
            entry = files.get(event_name)
            if entry is None:
                raise EvidenceError(event_name, "is missing from the bundle", index)
            if leaf_hash(entry) != proof.extra:
                raise EvidenceError(event_name, "does not hash to the leaf hash its proof is for", index)
            for digest in blob_digests(entry):
                name = "blobs/" + digest.replace(":", "-")
                if name in files and "sha256:" + _sha256(files[name]) != digest:
                    raise EvidenceError(name, "does not hash to the digest its event names", index)
        try:
            verify_tlog_proof(proof_bytes, checkpoint.origin, [log_verifier], entry)
        except TlogProofError as exc:
            raise EvidenceError(proof_name, str(exc), index) from None
    for name in sorted(set(files) - expected_files):
        raise EvidenceError(name, "is not part of any listed event")
    return BundleReport(
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root,
        len(manifest["events"]),
        redacted,
        cosigners,
        manifest["query"],
        manifest["created"],
        warnings,
    )


def _entry_of(name: str) -> int | None:
    """The entry index an events/ or proofs/ file is about."""
    match = re.fullmatch(r"(?:events|proofs)/(\d+)\.(?:json|tlog-proof)", name)
    return int(match.group(1)) if match else None


def _manifest(files: Mapping[str, bytes]) -> dict[str, Any]:
    data = files.get(MANIFEST)
    if data is None:
        raise EvidenceError(MANIFEST, "is missing: this is not a sealtrail evidence bundle")
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EvidenceError(MANIFEST, f"is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise EvidenceError(MANIFEST, f"is not a {FORMAT} manifest")
    try:
        canonical = canonical_json(manifest)
    except (TypeError, ValueError) as exc:
        raise EvidenceError(MANIFEST, f"cannot be canonicalised ({exc})") from None
    if canonical != data:
        raise EvidenceError(MANIFEST, "is not in RFC 8785 canonical form: it was changed")
    body = {key: value for key, value in manifest.items() if key != "digest"}
    if manifest.get("digest") != _sha256(canonical_json(body)):
        raise EvidenceError(MANIFEST, "its own digest does not match its content: it was changed")
    try:
        _check_manifest_shape(manifest)
    except (KeyError, TypeError, ValueError) as exc:
        raise EvidenceError(MANIFEST, f"is malformed ({exc})") from None
    return manifest


def _check_manifest_shape(manifest: Mapping[str, Any]) -> None:
    if not isinstance(manifest["files"], dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in manifest["files"].items()
    ):
        raise ValueError("files must map names to SHA-256 hex digests")
    cp = manifest["checkpoint"]
    if cp["file"] != CHECKPOINT or not isinstance(cp["size"], int) or not isinstance(cp["root"], str):
        raise ValueError("bad checkpoint record")
    if manifest["log_vkey"] != LOG_VKEY or manifest["witness_vkeys"] != WITNESS_VKEYS:
        raise ValueError("bad key file names")
    if not isinstance(manifest["origin"], str) or not isinstance(manifest["created"], str):
        raise ValueError("origin and created must be strings")
    if manifest["query"] is not None and not isinstance(manifest["query"], str):
        raise ValueError("query must be a string or null")
    if not isinstance(manifest["blobs"], list) or not all(isinstance(b, str) for b in manifest["blobs"]):
        raise ValueError("blobs must be a list of file names")
    seen: set[int] = set()
    for record in manifest["events"]:
        index = record["index"]
        if not isinstance(index, int) or isinstance(index, bool) or index < 0 or index in seen:
            raise ValueError("each event needs a distinct non-negative index")
        seen.add(index)
        if not isinstance(record["leaf_hash"], str) or not isinstance(record["proof"], str):
            raise ValueError("each event needs a leaf_hash and a proof file")
        if record["event"] is not None and not isinstance(record["event"], str):
            raise ValueError("event must be a file name or null")
    for name in (CHECKPOINT, LOG_VKEY, WITNESS_VKEYS, README):
        if name not in manifest["files"]:
            raise KeyError(f"files lacks {name}")


def _log_verifier(files: Mapping[str, bytes], trusted: str | None, warnings: list[str]) -> Verifier:
    try:
        bundled = parse_verifier(files[LOG_VKEY].decode().strip())
    except (NoteError, UnicodeDecodeError) as exc:
        raise EvidenceError(LOG_VKEY, f"is not a log vkey ({exc})") from None
    if trusted is None:
        warnings.append("no --vkey given: trusting the log key inside the bundle; compare it with the operator's")
        return bundled
    try:
        mine = parse_verifier(trusted.strip())
    except NoteError as exc:
        raise ValueError(f"the trusted log key is not a vkey: {exc}") from None
    if (mine.name, mine.key_id, mine.public_key) != (bundled.name, bundled.key_id, bundled.public_key):
        raise EvidenceError(LOG_VKEY, f"is not the key you trust ({mine.name}+{mine.key_id:08x})")
    return mine


def _witness_verifiers(
    files: Mapping[str, bytes], trusted: Sequence[str] | None, warnings: list[str]
) -> list[Verifier]:
    try:
        bundled = [parse_witness_key(line) for line in files[WITNESS_VKEYS].decode().splitlines() if line]
    except (NoteError, UnicodeDecodeError) as exc:
        raise EvidenceError(WITNESS_VKEYS, f"holds a line that is not a witness vkey ({exc})") from None
    if trusted is None:
        if bundled:
            warnings.append("no --witness keys given: trusting the witness keys inside the bundle")
        return list(bundled)
    mine = [parse_witness_key(v.strip()) for v in trusted]
    return list(mine)


# --- zip files ------------------------------------------------------------------------------------

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, ValueError, EOFError)
"""What zipfile raises on a damaged archive (a flipped flag bit claims encryption, an unknown method...)."""


def zip_bytes(files: Mapping[str, bytes]) -> bytes:
    """The one zip encoding of a bundle: stored (uncompressed, so no zlib version can change a byte),
    fixed timestamps and permissions, README and manifest first, then names in order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(files, key=lambda n: (n != README, n != MANIFEST, n)):
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()


def write_zip(files: Mapping[str, bytes], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(zip_bytes(files))
    tmp.replace(path)


def verify_zip(
    path: Path,
    *,
    trusted_vkey: str | None = None,
    trusted_witnesses: Sequence[str] | None = None,
    min_cosignatures: int = 0,
) -> BundleReport:
    """verify_bundle on a zip file, then its zip structure: a changed byte in a header, a timestamp or
    the directory, outside every file, is blamed on the zip itself."""
    files = read_zip(path)
    report = verify_bundle(
        files, trusted_vkey=trusted_vkey, trusted_witnesses=trusted_witnesses, min_cosignatures=min_cosignatures
    )
    if zip_bytes(files) != path.read_bytes():
        raise EvidenceError(path.name, "its zip structure differs from the one `evidence export` writes")
    return report


def read_zip(path: Path) -> dict[str, bytes]:
    """The files of a bundle zip; refuses unexpected names, duplicates and oversized content."""
    files: dict[str, bytes] = {}
    if path.stat().st_size > MAX_BYTES:
        raise EvidenceError(path.name, "is larger than 4 GiB")
    try:
        with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_FILES:
                raise EvidenceError(path.name, f"holds more than {MAX_FILES} files")
            total = 0
            for info in infos:
                if info.is_dir():
                    continue
                if not _NAME.fullmatch(info.filename):
                    raise EvidenceError(info.filename, "is not a file a sealtrail evidence bundle holds")
                if info.filename in files:
                    raise EvidenceError(info.filename, "appears twice in the zip")
                total += info.file_size
                if total > MAX_BYTES:
                    raise EvidenceError(path.name, "unpacks to more than 4 GiB")
                try:
                    files[info.filename] = archive.read(info)
                except _UNREADABLE as exc:
                    raise EvidenceError(info.filename, f"cannot be read from the zip ({exc})") from None
    except EvidenceError:
        raise
    except _UNREADABLE as exc:
        raise EvidenceError(path.name, f"is not a readable zip file ({exc})") from None
    return files
