"""Source adapters: the payloads DevSecOps tools send, turned into event envelopes.

Each module is pure (no I/O): it checks a request's authenticity where the
tool signs it (HMAC secrets, tokens compared in constant time), parses the
payload, and returns envelope dicts ready for `sealtrail.event.prepare`.
The HTTP routes in `sealtrail.server` call them.
"""
