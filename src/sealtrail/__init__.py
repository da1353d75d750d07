"""sealtrail: an immutable, verifiable audit log for DevSecOps.

The pure core — merkle, note, checkpoint, cosignature, tiles, tlogproof,
event — does no I/O; the store engines, the sequencer (log), audits (verify)
and the command line build on it.
"""

__version__ = "0.1.0"
