"""Whether downloads are forbidden: one switch read by the model builders and the weights fetcher."""

from __future__ import annotations

import os

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "V2A_OFFLINE")


def hub_offline() -> bool:
    """True when the environment forbids downloads (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, or our V2A_OFFLINE).

    Nothing in v2a sets these: offline is the user's choice (the Makefile and the tests set it for themselves).
    """
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on") for k in OFFLINE_VARIABLES)
