"""Every CUDA kernel's source is ASCII: CuPy writes it to a .cu file in the locale's encoding, and a
non-ASCII character in a comment would fail the compile under a non-UTF-8 locale."""
import importlib
import pathlib

import pytest

import minidnn

PACKAGE = pathlib.Path(minidnn.__file__).parent
KERNEL_MODULES = sorted("minidnn." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
                        for path in PACKAGE.rglob("*kernel*.py"))


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
