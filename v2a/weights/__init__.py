"""The weights registry and cache: every checkpoint a profile can name, fetched and checked by one command.

``registry.yaml`` lists the entries (source, file, publisher's size and checksum where there is
one, licence, the profile field it fills); ``cache`` says where they live (``V2A_WEIGHTS_DIR``,
else ``$V2A_HOME/weights``, ``$HF_HOME/v2a-weights``, ``~/.cache/v2a/weights``); ``fetch`` downloads
them resumably and atomically; A profile's entries are checked by ``v2a.models.profile_weights``; the command ``v2a weights list | fetch |
verify`` is ``v2a.tools.weights_cli``. The idea follows
open_clip's ``pretrained.py`` (a table of named checkpoints and where each comes from).
"""

from v2a.weights.cache import Status, cache_dir, entry_for_path, entry_path, status
from v2a.weights.download import ChecksumError, DownloadError, WeightsError
from v2a.weights.fetch import WeightsOfflineError, fetch_command, fetch_entry, offline, verify_entry
from v2a.weights.registry import Entry, RegistryError, find_entry, get_entry, load_registry, registry, use_registry

__all__ = [
    "ChecksumError", "DownloadError", "Entry", "RegistryError", "Status", "WeightsError", "WeightsOfflineError",
    "cache_dir", "entry_for_path", "entry_path", "fetch_command", "fetch_entry", "find_entry",
    "get_entry", "load_registry", "offline", "registry", "status", "use_registry",
    "verify_entry",
]
