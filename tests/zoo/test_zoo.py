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
XFAIL = {
    "vit-tiny": ("not met: at 8 bits the worst parameter gradients (blocks.*.mlp.fc1/fc2.weight) are 1.2 % from "
                 "exact: stochastic rounding's own noise at 8 bits (rounding to nearest gave 0.87 % but made the "
                 "checkpointed Llama cases fail, so it was reverted). The LayerNorm error this case found "
                 "(blocks.0.norm2.weight 15 %: groups of 256 straddled tokens of width 192) is fixed by the "
                 "row-aligned codec groups (docs/policies.md)"),
    "resnet18-fp32": ("not met: at 8 bits bn1.weight's gradient is 1.07 % from exact (was 1.5-2.3 %: BatchNorm "
                      "inputs are now read in channel planes, docs/policies.md); stochastic rounding's noise at "
                      "8 bits. Saved bytes 6.5x lower and the loss within 1 % pass"),
    "resnet18-bf16": ("not met, and not the codec's: under bf16 autocast the 8-bit gradients of bn1.weight and "
                      "conv1.weight are 2.4 % and 1.9 % from exact (fp32: 1.07 %), but perturbing the saved "
                      "tensors by noise of 2e-5 of their max, far below the codec's error, already moves them "
                      "1.9 % (bench/cpu/bf16_floor.py): bf16 arithmetic sets this floor. Saved bytes 2.94x "
                      "lower and the loss within 1 % pass"),
}


@pytest.mark.parametrize("case,ratio,expected", [
    pytest.param(*c, marks=[pytest.mark.xfail(strict=True, reason=XFAIL[c[0]])] if c[0] in XFAIL else [])
    for c in CASES], ids=[c[0] for c in CASES])
def test_model(case, ratio, expected):
    zoo.check_case(case, ratio, expected, steps=4)
