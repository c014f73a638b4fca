"""Progress reporting: quiet when disabled, one summary line per epoch when enabled."""
import io
import sys
import types

import numpy
import pytest

from minidnn.layers import Dense
from minidnn.networks import Sequential
from minidnn.training import SGD, Trainer
from minidnn.training.progress import _Plain, progress_bar


def test_a_disabled_bar_counts_silently(capsys):
    bar = progress_bar(3, "epoch 1", enabled=False)
    assert isinstance(bar, _Plain)
    bar.update()
    bar.update(2)
    bar.set_postfix(loss="0.5")
    bar.close()
    assert bar.n == 3 and capsys.readouterr() == ("", "")


def test_the_plain_bar_prints_one_line_when_closed(capsys):
    bar = _Plain(4, "epoch 2", enabled=True)
    bar.update(4)
    bar.set_postfix(loss="0.25", acc="0.9")
    bar.close()
    assert capsys.readouterr().err == "epoch 2: 4/4 loss=0.25 acc=0.9\n"


def test_a_quiet_trainer_prints_nothing_and_a_verbose_one_prints_each_epoch(capsys):
    x = numpy.random.default_rng(0).standard_normal((20, 3)).astype(numpy.float32)
    y = (x[:, 0] > 0).astype(numpy.int64)
    net = Sequential([Dense(3, 2, rng=0)], (3,))
    Trainer(net, SGD(net.named_params(), lr=0.1), batch_size=5, progress=False).fit(x, y, 2)
    assert capsys.readouterr().out == ""
    Trainer(net, SGD(net.named_params(), lr=0.1), batch_size=5, progress=True).fit(x, y, 2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["epoch=1", "epoch=2"]


def test_output_to_a_file_gets_the_one_line_bar_even_with_tqdm(monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())          # not a terminal
    assert isinstance(progress_bar(3, "epoch 1"), _Plain)


def test_a_terminal_gets_tqdm_when_installed(monkeypatch):
    tqdm = pytest.importorskip("tqdm")

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = progress_bar(3, "epoch 1")
    assert not isinstance(bar, _Plain) and isinstance(bar, tqdm.tqdm)
    bar.close()


def test_a_notebook_gets_tqdm_although_its_streams_are_no_terminal(monkeypatch):
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    bar = progress_bar(3, "epoch 1")
    assert isinstance(bar, tqdm.tqdm)
    bar.close()
