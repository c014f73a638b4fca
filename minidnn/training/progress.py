"""Progress bars: tqdm when installed (optional extra), a quiet fallback otherwise."""
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
    if enabled:
        try:
            from tqdm.auto import tqdm
            return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
        except ImportError:
            pass
    return _Plain(total, desc, enabled)
