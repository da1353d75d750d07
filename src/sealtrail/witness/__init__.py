"""A c2sp.org/tlog-witness witness (state, service, HTTP app) and a client that submits to one.

The HTTP app lives in `sealtrail.witness.server` (imported on demand: it needs Starlette).
"""

from .client import WitnessClient, WitnessConflict, WitnessError, WitnessRefused, WitnessUnavailable, submission_url
from .directory import DEFAULT_WITNESS_DIR, WitnessDir
from .protocol import (
    ADD_CHECKPOINT,
    MAX_BODY_BYTES,
    MAX_PROOF_LINES,
    SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    ProtocolError,
    Refusal,
    format_signature_lines,
    format_size,
    parse_add_checkpoint,
    parse_signature_lines,
    parse_size,
)
from .service import Witness
from .state import Evidence, LogState, WitnessState

__all__ = [
    "ADD_CHECKPOINT",
    "DEFAULT_WITNESS_DIR",
    "MAX_BODY_BYTES",
    "MAX_PROOF_LINES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpointRequest",
    "Evidence",
    "LogState",
    "ProtocolError",
    "Refusal",
    "Witness",
    "WitnessClient",
    "WitnessConflict",
    "WitnessDir",
    "WitnessError",
    "WitnessRefused",
    "WitnessState",
    "WitnessUnavailable",
    "format_signature_lines",
    "format_size",
    "parse_add_checkpoint",
    "parse_signature_lines",
    "parse_size",
    "submission_url",
]
