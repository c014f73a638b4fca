"""Every CUDA kernel's source is ASCII: CuPy writes it to a .cu file in the locale's encoding, and a
non-ASCII character in a comment would fail the compile under a non-UTF-8 locale."""
import importlib

import pytest

from support.kernel_modules import KERNEL_MODULES


def test_every_kernel_module_is_found():
    assert len(KERNEL_MODULES) >= 6


@pytest.mark.parametrize("name", KERNEL_MODULES)
def test_kernel_sources_are_ascii(name):
    module = importlib.import_module(name)
    sources = {key: value for key, value in vars(module).items()
               if key.isupper() and isinstance(value, (str, tuple, dict))}
    assert "PREAMBLE" in sources and "KERNELS" in sources and "OPTIONS" in sources
    for key, value in sources.items():
        parts = value.values() if isinstance(value, dict) else [value]
        text = " ".join(p if isinstance(p, str) else " ".join(v for v in p if isinstance(v, str)) for p in parts)
        assert text.isascii(), f"{name}.{key}: {sorted({c for c in text if not c.isascii()})}"


def test_a_kernel_built_off_its_registry_is_refused_under_the_emulated_cupy():
    """The guard in conftest.py (kernels_come_from_their_registries) rejects a kernel whose source is
    not the one its module declares, so the nvcc check cannot miss what runs."""
    from conftest import EMULATED_CUPY
    from minidnn import backend
    if not EMULATED_CUPY:
        pytest.skip("the guard runs under the emulated CuPy (MINIDNN_EMULATE_CUPY=1)")
    with pytest.raises(AssertionError, match="not built from its module's KERNELS"):
        backend.elementwise_kernel("relu_forward", "T x", "T y", "y = x;")
