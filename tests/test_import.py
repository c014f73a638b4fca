"""``import minidnn`` needs NumPy only: no optional dependency is imported with it."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTIONAL = ("scipy", "cupy", "matplotlib", "torch", "tqdm")

CODE = """
import sys
before = set(sys.modules)       # what the interpreter's start-up (site, .pth files) imported itself
import minidnn, minidnn.layers, minidnn.networks, minidnn.training, minidnn.losses, minidnn.checkpoint
new = {name.split(".")[0] for name in set(sys.modules) - before}
print(" ".join(sorted(new - set(sys.stdlib_module_names) - {"minidnn", "numpy"})))
print(" ".join(name for name in %r if name in sys.modules))
""" % (OPTIONAL,)


def test_import_minidnn_imports_numpy_only():
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode == 0, result.stderr
    third_party, optional = result.stdout.split("\n")[:2]
    assert optional == "", f"import minidnn also imported {optional}"
    assert third_party == "", f"import minidnn imported more than NumPy: {third_party}"
