"""The paper's own numbers (../shared/paper/NOTES.md), to print beside ours."""

MODELS = ("N100-100-10", "N200-200-10", "AE400-10", "ConvNet")

# Table 1: test error %, adversarial error %, mean distortion
TABLE1 = {
    "N100-100-10": {"train_error": 0.0, "test_error": 1.77, "adv_error": 99.9, "distortion": 0.084},
    "N200-200-10": {"train_error": 0.0, "test_error": 1.65, "adv_error": 99.9, "distortion": 0.087},
    "AE400-10": {"train_error": 1.0, "test_error": 2.0, "adv_error": 99.6, "distortion": 0.098},
    "ConvNet": {"train_error": 0.0, "test_error": 0.90, "adv_error": 100.0, "distortion": 0.095},
}

# Table 5: DCN vs original (test error %, mean distortion)
TABLE5 = {
    "N100-100-10": {"dcn_error": 2.3, "dcn_distortion": 0.107, "orig_error": 1.8, "orig_distortion": 0.084},
    "N200-200-10": {"dcn_error": 2.0, "dcn_distortion": 0.102, "orig_error": 1.6, "orig_distortion": 0.087},
    "AE400-10": {"dcn_error": 2.0, "dcn_distortion": 0.106, "orig_error": 2.0, "orig_distortion": 0.098},
    "ConvNet": {"dcn_error": 1.2, "dcn_distortion": 0.106, "orig_error": 0.9, "orig_distortion": 0.095},
}

# Table 6: N200-200-10 under different training conditions
TABLE6 = {
    "dcn": {"test_error": 2.0, "distortion": 0.102},
    "gn-l1": {"test_error": 1.8, "distortion": 0.095},
    "gn-lstar": {"test_error": 2.0, "distortion": 0.099},
    "dcn+gn-l1": {"test_error": 2.2, "distortion": 0.108},
}

# Table 2: Gaussian blur at the input, test error % by kernel size: clean, adversarial
TABLE2 = {
    "N100-100-10": {"clean": {1: 1.8, 5: 2.6, 11: 11.3}, "adv": {1: 99.9, 5: 43.5, 11: 62.8}},
    "N200-200-10": {"clean": {1: 1.6, 5: 2.5, 11: 14.8}, "adv": {1: 99.9, 5: 47.0, 11: 65.5}},
    "AE400-10": {"clean": {1: 2.0, 5: 3.2, 11: 16.6}, "adv": {1: 99.6, 5: 68.3, 11: 78.8}},
    "ConvNet": {"clean": {1: 0.9, 5: 1.2, 11: 4.0}, "adv": {1: 100.0, 5: 53.8, 11: 43.8}},
}

# Table 3: error % on a row model's denoised test adversarials, by the model whose training
# adversarials the autoencoder learned from (column); then each stacked network's clean test
# error % and the mean distortion of new adversarials against it
TABLE3 = {
    "cells": {  # (row model, column model) -> error %
        ("N100-100-10", "N100-100-10"): 2.3, ("N100-100-10", "N200-200-10"): 2.4,
        ("N100-100-10", "AE400-10"): 2.3, ("N100-100-10", "ConvNet"): 5.2,
        ("N200-200-10", "N100-100-10"): 2.3, ("N200-200-10", "N200-200-10"): 2.2,
        ("N200-200-10", "AE400-10"): 2.2, ("N200-200-10", "ConvNet"): 5.4,
        ("AE400-10", "N100-100-10"): 3.6, ("AE400-10", "N200-200-10"): 3.5,
        ("AE400-10", "AE400-10"): 2.7, ("AE400-10", "ConvNet"): 9.2,
        ("ConvNet", "N100-100-10"): 7.7, ("ConvNet", "N200-200-10"): 7.6,
        ("ConvNet", "AE400-10"): 8.3, ("ConvNet", "ConvNet"): 2.6,
    },
    "stacked_error": {"N100-100-10": 2.1, "N200-200-10": 1.9, "AE400-10": 2.1, "ConvNet": 1.1},
    "stacked_distortion": {"N100-100-10": 0.049, "N200-200-10": 0.051, "AE400-10": 0.043, "ConvNet": 0.038},
}

# Table 4: a standard denoising autoencoder (Gaussian corruption σ): error % on adversarial test data
TABLE4 = {
    0.1: {"N100-100-10": 5.0, "N200-200-10": 4.9, "AE400-10": 11.5, "ConvNet": 9.1},
    0.5: {"N100-100-10": 10.0, "N200-200-10": 10.6, "AE400-10": 16.3, "ConvNet": 15.3},
}
