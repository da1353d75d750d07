"""The witness's one decision: verify a submitted checkpoint, advance the state, cosign.

c2sp.org/tlog-witness "add-checkpoint", in the spec's order: 404 unknown
origin, 403 no signature by a key trusted for it (signatures by other keys are
ignored), 400 malformed or old size above the checkpoint's, then, atomically
with the update (WitnessState.advance), 409 stale old size, 422 bad proof, 409
same size with another root. Only after the new tree is durable is the
checkpoint cosigned (c2sp.org/tlog-cosignature, cosignature/v1).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..checkpoint import CheckpointError, parse_checkpoint
from ..cosignature import CosignatureSigner, CosignatureVerifier
from ..note import Ed25519Signer, NoteError, Signature, open_note, parse_note, parse_verifier
from .protocol import ProtocolError, Refusal, format_signature_lines, parse_add_checkpoint
from .state import WitnessState

__all__ = ["Witness"]


def _unix_now() -> int:
    return int(time.time())


class Witness:
    """Cosigns checkpoints of the logs in `state` with `key` (an Ed25519 key used for cosignature/v1)."""

    def __init__(self, state: WitnessState, key: Ed25519Signer, clock: Callable[[], int] = _unix_now) -> None:
        self.state = state
        self._key = key
        self._clock = clock

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self._key.name, self._key.public_key)

    def add_checkpoint(self, body: bytes) -> bytes:
        """The 200 response body (cosignature lines) for an add-checkpoint request body; raises Refusal."""
        try:
            request = parse_add_checkpoint(body)
        except ProtocolError as exc:
            raise Refusal(400, str(exc)) from None
        text, _ = parse_note(request.checkpoint)  # the format was checked by parse_add_checkpoint
        origin = text.split("\n", 1)[0]
        keys = self.state.keys(origin)
        if keys is None:
            raise Refusal(404, f"this witness does not witness the log {origin[:200]!r}")
        try:
            note = open_note(request.checkpoint, [parse_verifier(key) for key in keys])
        except NoteError as exc:
            raise Refusal(403, f"no signature by a key this witness trusts for {origin}: {exc}") from None
        try:
            checkpoint = parse_checkpoint(note.text)
        except CheckpointError as exc:
            raise Refusal(400, f"checkpoint: {exc}") from None
        self.state.advance(origin, request.old_size, checkpoint.size, checkpoint.root, request.proof, body)
        return format_signature_lines([self._cosign(note.text)])

    def _cosign(self, text: str) -> Signature:
        """A cosignature/v1 signature on a checkpoint text, timestamped now: only once the state has advanced."""
        signer = CosignatureSigner(self._key.name, self._key.seed, self._clock())
        return Signature(signer.name, signer.key_id, signer.sign(text.encode("utf-8")))
