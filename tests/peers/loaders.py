"""Import a peer package's model module without running the package's ``__init__``.

Several peers do more than define models at import: panns_inference downloads a label CSV into the
home folder, DALLE2-pytorch imports its trainer and image stack. ``load_submodule`` loads just the
file that defines the model, from the installed package, and skips the test when it is absent.

DALLE2-pytorch's prior network (``dalle2_pytorch.dalle2_pytorch``) without its image stack:

The package's ``__init__`` pulls in its trainer, x-clip, CoCa, kornia, VQGAN and more, none of which the
diffusion prior uses. Installed with ``--no-deps`` (its pins conflict with ours), those are absent, so
placeholder modules stand in for the ones that are missing while the prior's own module is loaded
from the installed package. The classes under test (``DiffusionPriorNetwork``, ``CausalTransformer``,
``Attention``, ``RelPosBias``, ``NoiseScheduler``) are the package's own code.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest

_IMAGE_SIDE = {  # module: names the prior's module imports from it
    "kornia": [], "kornia.filters": ["gaussian_blur2d"], "kornia.augmentation": [],
    "resize_right": ["resize"], "x_clip": ["CLIP"], "coca_pytorch": ["CoCa"],
    "vector_quantize_pytorch": ["VectorQuantize"],
}


def _placeholder(name: str):
    return type(name, (), {})


def load_submodule(package: str, submodule: str, pip_name: str):
    """``package.submodule`` from the installed package, its ``__init__`` not run; skip if not installed."""
    full = f"{package}.{submodule}"
    if full in sys.modules:
        return sys.modules[full]
    loaded = sys.modules.get(package)
    if loaded is not None and getattr(loaded, "__spec__", None) is None:  # a stub of an earlier call
        locations = list(loaded.__path__)
    else:
        spec = importlib.util.find_spec(package)
        if spec is None:
            pytest.skip(f"{pip_name} is not installed (see the Makefile's peer-package lines)")
        locations = list(spec.submodule_search_locations)
    if package not in sys.modules:
        stub = types.ModuleType(package)  # the package without its __init__
        stub.__path__ = locations
        sys.modules[package] = stub
    path = f"{locations[0]}/{submodule.replace('.', '/')}.py"
    sub = importlib.util.spec_from_file_location(full, path)
    module = importlib.util.module_from_spec(sub)
    sys.modules[full] = module
    try:
        sub.loader.exec_module(module)
    except Exception:
        del sys.modules[full]
        raise
    return module


def load_prior_module():
    if importlib.util.find_spec("dalle2_pytorch") is None:
        pytest.skip("dalle2-pytorch is not installed (Makefile: pip install --no-deps dalle2-pytorch)")
    pytest.importorskip("einops")
    pytest.importorskip("rotary_embedding_torch")
    for name, attrs in _IMAGE_SIDE.items():
        try:
            importlib.import_module(name)
        except ImportError:
            mod = types.ModuleType(name)
            for attr in attrs:
                setattr(mod, attr, _placeholder(attr))
            sys.modules[name] = mod
    if "kornia" in sys.modules and not hasattr(sys.modules["kornia"], "augmentation"):
        sys.modules["kornia"].augmentation = sys.modules["kornia.augmentation"]
        sys.modules["kornia"].filters = sys.modules["kornia.filters"]
    return load_submodule("dalle2_pytorch", "dalle2_pytorch", "dalle2-pytorch")
