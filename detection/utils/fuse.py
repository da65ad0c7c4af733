"""Fold BatchNorm into the convolution before it, for faster inference (CPU above all): the same outputs in eval mode.

`prepare_for_inference(model)` is what the Predictor runs: eval, fused, channels-last.
`fuse_conv_bn(model)` works in place on Conv2d -> BatchNorm2d (or FrozenBatchNorm2d) pairs inside nn.Sequential.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a Conv2d in an nn.Sequential (conv-BN-act blocks: tiny, csp_tiny,
    the PAN neck, torchvision's Conv2dNormActivation) into that conv's weight and bias; the BN becomes an Identity.

    In place, and for inference only: the model must be in eval mode (BN uses its running statistics) and stays
    fit for eval only. Its state_dict changes (BN entries gone, conv biases added), so load weights first.
    Returns the model. BN after a conv outside a Sequential (ResNet's blocks) is left as it is.
    """
    from torchvision.ops.misc import FrozenBatchNorm2d  # late: keeps this module light

    if model.training:
        raise ValueError("fuse_conv_bn: call model.eval() first (fusing uses BatchNorm's running statistics)")
    for block in list(model.modules()):
        if not isinstance(block, nn.Sequential):
            continue
        for i in range(len(block) - 1):
            conv, norm = block[i], block[i + 1]
            if (type(conv) is nn.Conv2d and isinstance(norm, (nn.BatchNorm2d, FrozenBatchNorm2d))
                    and norm.running_mean is not None):
                block[i] = fused(conv, norm)
                block[i + 1] = nn.Identity()
    return model


def fused(conv: nn.Conv2d, norm: nn.Module) -> nn.Conv2d:
    """A new Conv2d (with bias) equal to `norm(conv(x))` under BN's running statistics."""
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                    device=conv.weight.device, dtype=conv.weight.dtype)
    out.weight, out.bias = fuse_conv_bn_weights(conv.weight, conv.bias, norm.running_mean, norm.running_var,
                                                norm.eps, norm.weight, norm.bias)
    return out


def prepare_for_inference(model: nn.Module) -> nn.Module:
    """The model as the Predictor runs it: eval mode, BatchNorm folded into the convs before it, weights in
    channels-last order (oneDNN's own layout on CPU: no reorder around every conv). In place; returns the model.
    The same detections as before up to float rounding; for inference only (see fuse_conv_bn)."""
    return fuse_conv_bn(model.eval()).to(memory_format=torch.channels_last)
