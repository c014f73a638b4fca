"""Jacobian-norm penalties: layer-wise (the paper's Eq. 6) and global (Eq. 5), closed form, exact gradients."""
from .blocks import Block, find_blocks
from .global_jacobian import GlobalContractive, global_penalty, input_jacobian_norms
from .layerwise import LayerwiseContractive, block_penalty, layer_norms

__all__ = ["Block", "find_blocks", "GlobalContractive", "global_penalty", "input_jacobian_norms",
           "LayerwiseContractive", "block_penalty", "layer_norms"]
