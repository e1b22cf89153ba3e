# test_zoo.py: each zoo model trained a few steps exact, at 8 bits and at the default setting
# (zoo.check_case says what is asserted); one meson test per model (tests/zoo/meson.build).
import pytest

import zoo

# [case, minimum saved-bytes ratio at the default (fp32 4x, bf16 2.5x), warnings that come
# without the shim too (regular expressions)]
PEFT_CKPT = r"FutureWarning: `is_gradient_checkpointing` is deprecated"  # peft 0.21 on transformers 5
HF_CKPT = r"FutureWarning: `gradient_checkpointing_enable` is deprecated"  # transformers 5.24's own
LEAFSPEC = r"FutureWarning: `isinstance\(treespec, LeafSpec\)` is deprecated"  # lightning 2.6 on torch 2.14
CASES = [
    ["llama-bf16", 2.5, []],
    ["llama-ckpt-reentrant", 2.5, [HF_CKPT]],
    ["llama-ckpt-nonreentrant", 2.5, [HF_CKPT]],
    ["llama-lora", 2.5, [PEFT_CKPT]],
    ["llama-trainer", 2.5, []],
    ["resnet18-fp32", 4.0, []],
    ["resnet18-bf16", 2.5, []],
    ["vit-tiny", 4.0, []],
    ["transformer-encoder", 4.0, []],
    ["gcn", 4.0, [r"FutureWarning: `torch.jit.script` is deprecated"]],
    ["lightning", 4.0, [LEAFSPEC]],
    ["accelerate", 4.0, []],
    ["compile-mlp", 4.0, []],
    ["compile-block", 4.0, []],
]


# Cases that fail on main today, by reason (strict: each must be removed as soon as it passes).
BATCHNORM = ("not fixed (found by the zoo): at 8 bits BatchNorm weight gradients are 2-2.3 %% from exact "
             "(layer1.0.bn1.weight; the same with NCHW and 64x64 images; row-aligned codec groups do not "
             "help in channels_last, where a group holds channels of different scale); saved bytes only "
             "%s lower at the default: with 32x32 images, many saved tensors are under GACTSHIM_MIN_BYTES "
             "(64 KiB) and kept; the default's loss after 4 steps is %s off (AdamW 1e-3 on 8 images per "
             "step is not stable either way)")
XFAIL = {
    "compile-block": ("not met: with the frozen fc1.weight now kept exact (issue 13's keep rule), the compiled "
                      "block's saved bytes are 3.94x lower at the default, under the 4x target"),
    "resnet18-fp32": BATCHNORM % ("3.67x (< 4x)", "10 %"),
    "resnet18-bf16": BATCHNORM % ("1.88x (< 2.5x; 29 tensors kept as small)", "5.7 %"),
    "compile-mlp": ("not fixed (found by the zoo): under torch.compile the same MLP's 8-bit gradient error is "
                    "11 % (0.9 % eager, zoo-accelerate); the compiled graph's saved activations have no grad_fn, "
                    "so the ReLU mask and the producer rules do not apply; cause not yet isolated"),
}


@pytest.mark.parametrize("case,ratio,expected", [
    pytest.param(*c, marks=[pytest.mark.xfail(strict=True, reason=XFAIL[c[0]])] if c[0] in XFAIL else [])
    for c in CASES], ids=[c[0] for c in CASES])
def test_model(case, ratio, expected):
    zoo.check_case(case, ratio, expected, steps=4)
