"""Upstream e-ID provider adapters: one module per protocol, no imports from `gateway`."""
