"""A reproduce mode small enough for the test suite: seconds per stage, the whole pipeline."""
import pytest

from minidnn.experiments import reproduce as rp

TINY = {"limit": 500, "epochs": 1, "search_n": 20, "eval_n": 20, "seeds": (0,), "dcn_grid": (1e-3,),
        "global_grid": (0.1,), "train_adv_n": 60, "train_adv_n_convnet": 30, "val_adv_n": 20,
        "stacked_search_n": 20, "stacked_eval_n": 20, "ae_epochs": 2, "blur_sigmas": (1.0,), "noise_passes": 3,
        "noise_n_convnet": None, "noise_sigmas": (0.0, 0.1), "dae_sigmas": (0.1,), "dae_attack_sigmas": (0.1,)}


@pytest.fixture
def tiny_mode(monkeypatch):
    """``mode="quick"`` means TINY for the duration of one test."""
    monkeypatch.setitem(rp.MODES, "quick", TINY)
    return TINY
