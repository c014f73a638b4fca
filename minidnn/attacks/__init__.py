"""Adversarial examples (Szegedy et al. 2014; the paper's Eq. 1 and Sec. 2.1).

reference.lbfgsb_attack   scipy's L-BFGS-B, one example at a time (the trusted version)
batched.batched_lbfgs_attack   the same problem, vectorised across a batch on NumPy/CuPy, with
    lbfgsb.minimize_box       L-BFGS-B's own steps for many problems at once (default), or
    projected.minimize_projected   a cheaper projected L-BFGS (the experiments' results)
linesearch.MoreThuente    MINPACK-2's line search, one per row
protocol.search_c         the paper's one-constant-per-model search
minimal.minimal_attack    per-example smallest successful perturbation (search over c)
"""
from .batched import batched_lbfgs_attack
from .objective import AttackObjective, network_copy
from .reference import lbfgsb_attack
from .result import AttackResult
from .targets import RULES, UNTARGETED, choose_targets

__all__ = ["batched_lbfgs_attack", "lbfgsb_attack", "AttackObjective", "AttackResult", "choose_targets",
           "network_copy", "RULES", "UNTARGETED"]
