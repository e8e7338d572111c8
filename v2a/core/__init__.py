"""The bottom layer: typed configuration, shared names and constants, storage (fsspec), locks, fingerprints,
provenance. Everything else in v2a may import it; it imports nothing of v2a above it."""
