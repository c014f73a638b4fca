"""Writing files safely: atomically (write a temp file, then rename) and with the usual permissions."""
import os
import tempfile


def default_file_mode():
    """0o666 less the process's umask: the mode ``open`` would give a new file (mkstemp gives 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path, write):
    """Call ``write(file_object)`` on a temp file beside ``path``, fsync, then rename over ``path``.

    The file gets the mode a plain ``open`` would give it (the umask's), not the temp file's 0o600."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        os.chmod(tmp, default_file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
