"""Payments: talking to providers safely, and the pure pieces that make it safe.

``retry`` (jittered backoff and the retry loop), ``breaker`` (one per provider),
``signing`` (webhook signatures with a timestamp tolerance), ``dedup`` (a window of
provider event ids), ``provider`` (the adapter interface and the simulated
provider's adapter) and ``simulator`` (the simulated provider's pure ledger).
"""
