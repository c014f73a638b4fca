"""minidnn's CUDA kernel modules (every ``*kernel*.py`` in the package) and the kernels they declare."""
import functools
import importlib
import pathlib

import minidnn

PACKAGE = pathlib.Path(minidnn.__file__).parent
KERNEL_MODULES = sorted("minidnn." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
                        for path in PACKAGE.rglob("*kernel*.py"))


@functools.cache
def declared_kernels():
    """{kernel name: ((in, out, operation), preamble, options)} as the modules' KERNELS, PREAMBLE and
    OPTIONS declare them."""
    declared = {}
    for name in KERNEL_MODULES:
        module = importlib.import_module(name)
        for kernel, params in module.KERNELS.items():
            declared[kernel] = (tuple(params), module.PREAMBLE, tuple(module.OPTIONS))
    return declared
