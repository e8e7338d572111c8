"""The base every other part of v2a builds on."""
