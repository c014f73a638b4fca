"""Writing files safely: atomically (write a temp file, then rename) and with the usual permissions."""
import os
import tempfile


def _read_umask():
    umask = os.umask(0o022)          # the only way to read it is to set it: once, at import
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def default_file_mode():
    """0o666 less the process's umask (read at import): the mode ``open`` gives a new file."""
    return 0o666 & ~_UMASK


def _give_mode(tmp, path):
    """Give the temp file ``tmp`` the mode ``path`` has (it is replaced) or a new file would get;
    mkstemp's 0o600 otherwise. Where the file system refuses chmod, the file keeps what it has."""
    try:
        mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else default_file_mode()
        os.chmod(tmp, mode)
    except OSError:
        pass


def atomic_write(path, write):
    """Call ``write(file_object)`` on a temp file beside ``path``, fsync, then rename over ``path``.

    A new file gets the mode a plain ``open`` would give it (the umask's), a replaced one keeps its
    own, not the temp file's 0o600."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        _give_mode(tmp, path)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
