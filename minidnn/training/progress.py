"""Progress bars: tqdm on a terminal when installed (optional extra); otherwise (no tqdm, or output
going to a file or a pipe, where a redrawn bar would leave dozens of lines) one line when done.
In a notebook (ipykernel, whose streams are no terminal) tqdm.auto draws its widget."""
import sys


class _Plain:
    """Minimal stand-in for tqdm: counts, and prints one line when closed."""

    def __init__(self, total, desc, enabled):
        self.total, self.desc, self.enabled, self.n, self.postfix = total, desc, enabled, 0, {}

    def update(self, n=1):
        self.n += n

    def set_postfix(self, **kw):
        self.postfix = kw

    def close(self):
        if self.enabled:
            post = " ".join(f"{k}={v}" for k, v in self.postfix.items())
            print(f"{self.desc}: {self.n}/{self.total} {post}", file=sys.stderr)


def progress_bar(total, desc="", enabled=True):
    if enabled and (_on_terminal(sys.stderr) or "ipykernel" in sys.modules):     # a terminal or a notebook
        try:
            from tqdm.auto import tqdm
            return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
        except ImportError:
            pass
    return _Plain(total, desc, enabled)


def _on_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):         # replaced or closed streams
        return False
