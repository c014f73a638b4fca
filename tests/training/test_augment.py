"""Random shifts of the training images: the shift itself, the trainer's use of it, resumption."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

from minidnn.checkpoint import CheckpointError
from minidnn.layers import Dense, ReLU
from minidnn.networks import Sequential
from minidnn.training import RandomShift, Trainer, make_optimizer
from minidnn.training.augment import shift_images


def shifted_by_loops(x, dy, dx):
    """The definition, pixel by pixel: out[n, c, i, j] = x[n, c, i + dy_n, j + dx_n] inside the image, else 0."""
    out = numpy.zeros_like(x)
    n, channels, h, w = x.shape
    for k in range(n):
        for c in range(channels):
            for i in range(h):
                for j in range(w):
                    if 0 <= i + dy[k] < h and 0 <= j + dx[k] < w:
                        out[k, c, i, j] = x[k, c, i + dy[k], j + dx[k]]
    return out


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 4), channels=st.integers(1, 2), h=st.integers(1, 6), w=st.integers(1, 6),
       s=st.integers(0, 7), seed=st.integers(0, 2**32 - 1))
def test_shift_images_matches_the_definition(n, channels, h, w, s, seed):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, channels, h, w))
    offsets = rng.integers(-s, s + 1, size=(2, n))           # shifts larger than the image too
    numpy.testing.assert_array_equal(shift_images(x, offsets), shifted_by_loops(x, *offsets))


def test_random_shift_reads_flat_batches_as_images_and_draws_from_the_generator():
    rng = numpy.random.default_rng(0)
    x = rng.random((5, 2 * 4 * 3)).astype(numpy.float32)
    shift = RandomShift(2, image_shape=(2, 4, 3))
    out = shift(x, numpy.random.default_rng(7))
    offsets = numpy.random.default_rng(7).integers(-2, 3, size=(2, 5))
    assert out.shape == x.shape and out.dtype == numpy.float32
    numpy.testing.assert_array_equal(out, shifted_by_loops(x.reshape(5, 2, 4, 3), *offsets).reshape(5, -1))
    assert not numpy.array_equal(out, x)                     # seed 7 moves some image


def test_no_shift_leaves_the_batch_and_the_generator_alone():
    rng = numpy.random.default_rng(3)
    x = numpy.ones((2, 1, 3, 3))
    assert RandomShift(0, (1, 3, 3))(x, rng) is x
    assert rng.bit_generator.state == numpy.random.default_rng(3).bit_generator.state


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_a_bad_max_shift_is_refused(bad):
    with pytest.raises(ValueError, match="max_shift must be an integer"):
        RandomShift(bad)


def test_a_batch_of_another_shape_is_refused():
    with pytest.raises(ValueError, match=r"shape \(3, 10\) is neither \(N, \*\(1, 28, 28\)\) nor \(N, 784\)"):
        RandomShift(1)(numpy.zeros((3, 10)), numpy.random.default_rng(0))


# ---- in the trainer ---------------------------------------------------------------------------

def images(n=96, seed=0):
    """4x4 one-channel images, flat; the label says which half holds the bright pixel."""
    rng = numpy.random.default_rng(seed)
    x = rng.random((n, 16)).astype(numpy.float32) * 0.1
    labels = rng.integers(0, 2, n)
    column = numpy.where(labels == 1, 3, 0)
    x.reshape(n, 4, 4)[numpy.arange(n), rng.integers(0, 4, n), column] = 1.0
    return x, labels


def trainer(checkpoint, shift=1, seed=3):
    net = Sequential([Dense(16, 12, rng=1), ReLU(), Dense(12, 2, rng=2)], (16,), "mlp")
    opt = make_optimizer("momentum", net.named_params(), lr=0.1)
    augment = RandomShift(shift, (1, 4, 4)) if shift is not None else None
    return Trainer(net, opt, batch_size=16, seed=seed, checkpoint=checkpoint and str(checkpoint), progress=False,
                   augment=augment)


def test_the_trainer_shifts_training_batches_only():
    x, y = images()
    seen = []
    t = trainer(None)
    shift = t.augment

    def recording(batch, rng):
        out = shift(batch, rng)
        seen.append((batch, out))
        return out

    t.augment = recording
    t.fit(x, y, 1, *images(32, seed=1))
    assert len(seen) == 96 // 16                             # every training batch, no validation batch
    assert all(a.shape == (16, 16) for a, _ in seen)
    assert any(not numpy.array_equal(a, b) for a, b in seen)


def test_shifts_change_training_and_the_seed_fixes_them():
    x, y = images()
    weights = {}
    for name, shift, seed in (("plain", None, 3), ("shifted", 1, 3), ("again", 1, 3), ("other seed", 1, 4)):
        t = trainer(None, shift, seed)
        t.fit(x, y, 2)
        weights[name] = numpy.concatenate([p.data.ravel() for p in t.net.named_params().values()])
    assert numpy.array_equal(weights["shifted"], weights["again"])
    assert not numpy.array_equal(weights["shifted"], weights["plain"])
    assert not numpy.array_equal(weights["shifted"], weights["other seed"])


def test_a_shifted_run_resumes_exactly(tmp_path):
    x, y = images()
    whole = trainer(tmp_path / "whole.npz")
    whole.fit(x, y, 4)
    trainer(tmp_path / "resumed.npz").fit(x, y, 2)          # "killed" after epoch 2
    resumed = trainer(tmp_path / "resumed.npz")
    resumed.fit(x, y, 4)
    for k, p in whole.net.named_params().items():
        assert numpy.array_equal(p.data, resumed.net.named_params()[k].data), k


def test_resuming_with_another_shift_is_refused(tmp_path):
    x, y = images()
    trainer(tmp_path / "run.npz", shift=1).fit(x, y, 1)
    with pytest.raises(CheckpointError, match="other settings.*augment"):
        trainer(tmp_path / "run.npz", shift=2).fit(x, y, 2)
    with pytest.raises(CheckpointError, match="other settings.*augment"):
        trainer(tmp_path / "run.npz", shift=None).fit(x, y, 2)


def test_the_shift_runs_on_the_strict_stand_in_for_cupy():
    """No NumPy array slips into the gather (CuPy would refuse it or copy it silently)."""
    from support.strict_xp import StrictArray, strict
    x = numpy.random.default_rng(0).random((6, 2, 5, 4)).astype(numpy.float32)
    expected = RandomShift(3, (2, 5, 4))(x, numpy.random.default_rng(1))
    out = RandomShift(3, (2, 5, 4))(strict.asarray(x), numpy.random.default_rng(1))
    assert isinstance(out, StrictArray) and out.dtype == numpy.float32
    numpy.testing.assert_array_equal(strict.asnumpy(out), expected)


def test_a_shift_as_large_as_the_image_is_refused():
    with pytest.raises(ValueError, match="max_shift 28 would move whole 28x28 images out of view"):
        RandomShift(28)
    RandomShift(27)
