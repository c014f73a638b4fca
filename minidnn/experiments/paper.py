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
