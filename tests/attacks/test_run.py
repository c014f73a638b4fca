"""attack_dataset: chunks saved as they finish; a rerun recomputes only what is missing or stale."""
import os

import numpy
import pytest

from minidnn.attacks import batched_lbfgs_attack, choose_targets, run
from minidnn.attacks.result import ARRAYS
from minidnn.networks import mlp

D, N, CHUNK = 64, 30, 10


@pytest.fixture
def case():
    rng = numpy.random.default_rng(5)
    net = mlp([16], n_in=D, rng=5)
    x = rng.uniform(0, 1, (N, D)).astype(numpy.float32)
    labels = net.predict(x)
    return net, x, labels, choose_targets(net, x, labels, "random", rng=5)


@pytest.fixture
def counted(monkeypatch):
    """The batched attack, counting the examples it is called on (one entry per call)."""
    calls = []

    def attack(net, x, labels, targets, c, **options):
        calls.append(len(labels))
        return batched_lbfgs_attack(net, x, labels, targets, c, **options)
    monkeypatch.setitem(run.METHODS, "batched", attack)
    return calls


def same_records(a, b):
    for name in ARRAYS:
        numpy.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_resume_recomputes_only_the_missing_chunk(case, counted, tmp_path):
    net, x, labels, targets = case
    partial = tmp_path / "partial"
    first = run.attack_dataset(net, x, labels, targets, 0.5, chunk=CHUNK, partial_dir=str(partial),
                               progress=False, maxiter=50)
    assert counted == [CHUNK] * 3
    assert sorted(os.listdir(partial)) == ["chunk-00000.npz", "chunk-00001.npz", "chunk-00002.npz"]
    assert len(first) == N and first.meta["n"] == N and first.meta["c"] == 0.5

    os.remove(partial / "chunk-00001.npz")
    counted.clear()
    second = run.attack_dataset(net, x, labels, targets, 0.5, chunk=CHUNK, partial_dir=str(partial),
                                progress=False, maxiter=50)
    assert counted == [CHUNK]                                  # only the deleted chunk was attacked again
    same_records(first, second)

    counted.clear()
    third = run.attack_dataset(net, x, labels, targets, 0.5, chunk=CHUNK, partial_dir=str(partial),
                               progress=False, maxiter=50)
    assert counted == []                                       # everything reused
    same_records(first, third)


def test_without_partial_dir_everything_is_attacked_and_nothing_written(case, counted, tmp_path,
                                                                       monkeypatch):
    net, x, labels, targets = case
    monkeypatch.chdir(tmp_path)
    result = run.attack_dataset(net, x, labels, targets, 0.5, chunk=12, progress=False, maxiter=20)
    assert counted == [12, 12, 6] and len(result) == N
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("change", ["c", "maxiter", "images", "targets", "weights"])
def test_chunks_made_otherwise_are_not_reused(case, counted, tmp_path, change):
    """Other settings, other examples or other weights saved under the same folder: attacked afresh."""
    net, x, labels, targets = case
    partial = str(tmp_path / "partial")
    run.attack_dataset(net, x, labels, targets, 0.5, chunk=CHUNK, partial_dir=partial, progress=False,
                       maxiter=20)
    counted.clear()
    c, options = 0.5, {"maxiter": 20}
    if change == "c":
        c = 0.25
    elif change == "maxiter":
        options["maxiter"] = 21
    elif change == "images":
        x = x[::-1].copy()
        labels, targets = labels[::-1].copy(), targets[::-1].copy()
    elif change == "targets":
        targets = choose_targets(net, x, labels, "random", rng=6)
    else:
        net = mlp([16], n_in=D, rng=6)
    result = run.attack_dataset(net, x, labels, targets, c, chunk=CHUNK, partial_dir=partial, progress=False,
                                **options)
    assert counted == [CHUNK] * 3
    numpy.testing.assert_array_equal(result.original, x)
    numpy.testing.assert_array_equal(result.target, targets)


def test_an_unreadable_chunk_is_recomputed(case, counted, tmp_path):
    net, x, labels, targets = case
    partial = tmp_path / "partial"
    first = run.attack_dataset(net, x, labels, targets, 0.5, chunk=CHUNK, partial_dir=str(partial),
                               progress=False, maxiter=20)
    (partial / "chunk-00002.npz").write_bytes(b"PK\x03\x04 killed mid-write")
    counted.clear()
    second = run.attack_dataset(net, x, labels, targets, 0.5, chunk=CHUNK, partial_dir=str(partial),
                                progress=False, maxiter=20)
    assert counted == [CHUNK]
    same_records(first, second)


def test_chunks_remember_the_algorithm_and_older_chunks_count_as_projected(case, counted, tmp_path):
    """Chunks saved before the batched attack had a choice of algorithm were made by the projected
    L-BFGS: they are reused for algorithm='projected' and redone for the default 'lbfgsb'."""
    net, x, labels, targets = case
    partial = tmp_path / "partial"
    kw = dict(chunk=CHUNK, partial_dir=str(partial), progress=False, maxiter=50)
    run.attack_dataset(net, x, labels, targets, 0.5, algorithm="projected", **kw)
    for name in os.listdir(partial):                          # make them look like pre-algorithm chunks
        part = run.AttackResult.load(str(partial / name))
        assert part.meta.pop("algorithm") == "projected"
        part.save(str(partial / name))
    counted.clear()
    run.attack_dataset(net, x, labels, targets, 0.5, algorithm="projected", **kw)
    assert counted == []                                      # reused: they were made by that algorithm
    default = run.attack_dataset(net, x, labels, targets, 0.5, **kw)
    assert counted == [CHUNK] * 3 and default.meta["algorithm"] == "lbfgsb"
