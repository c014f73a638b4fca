"""Fixtures for the data tests: synthetic IDX files, a small MNIST, a loopback HTTP mirror."""

import gzip
import http.server
import struct
import threading

import numpy as np
import pytest

from minidnn.data import mnist

SMALL_SIZES = {"train": 6, "test": 4}


def _idx_bytes(array, magic=None, shape=None):
    array = np.asarray(array, dtype=np.uint8)
    shape = array.shape if shape is None else shape
    magic = (0x08 << 8 | len(shape)) if magic is None else magic
    return struct.pack(f">I{len(shape)}I", magic, *shape) + array.tobytes()


@pytest.fixture(scope="session")
def idx_bytes():
    """``idx_bytes(array, magic=None, shape=None) -> bytes``: uncompressed IDX file
    of a uint8 array; ``magic``/``shape`` override the header."""
    return _idx_bytes


@pytest.fixture(scope="session")
def make_idx():
    """``make_idx(array, magic=None, shape=None) -> bytes``: a gzip-compressed IDX file."""
    return lambda array, magic=None, shape=None: gzip.compress(_idx_bytes(array, magic, shape))


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No MNIST environment leaks in: empty user cache under tmp_path, no overrides."""
    monkeypatch.delenv("MINIDNN_DATA", raising=False)
    monkeypatch.delenv("MINIDNN_MNIST_MIRRORS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def small_mnist(monkeypatch, make_idx):
    """Shrink the splits to SMALL_SIZES; return ``files(split) -> {name: gz bytes}``
    giving valid synthetic files (random pixels, labels 0..9) for a split."""
    for split, size in SMALL_SIZES.items():
        monkeypatch.setitem(mnist.SPLITS, split, mnist.SPLITS[split]._replace(size=size))
    rng = np.random.default_rng(0)

    def files(split):
        n = SMALL_SIZES[split]
        spec = mnist.SPLITS[split]
        return {spec.images: make_idx(rng.integers(0, 256, (n, 28, 28))),
                spec.labels: make_idx(np.arange(n) % 10)}
    return files


@pytest.fixture
def write_files():
    """``write_files(directory, {name: bytes}) -> directory`` (created if needed)."""
    def write(directory, files):
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (directory / name).write_bytes(data)
        return directory
    return write


@pytest.fixture
def http_mirror():
    """``http_mirror(files) -> base URL`` of a server on 127.0.0.1 serving ``files``
    ({name: bytes}) under /mnist/ (anything else is a 404). The returned function's
    ``requests`` attribute lists the paths requested from all servers."""
    servers, requests = [], []

    def start(files):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                body = files.get(self.path.removeprefix("/mnist/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/mnist/"

    start.requests = requests
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
