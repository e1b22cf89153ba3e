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
    "resnet18-bf16": ("not met, and not the codec's: under bf16 autocast the 8-bit gradients are 2.2 % from "
                      "exact (worst bn1.bias, bn1.weight; fp32: 0.96 %, passes), but perturbing the saved "
                      "tensors by noise of 2e-5 of their max, far below the codec's error, already moves them "
                      "1.9 % (bench/cpu/bf16_floor.py): bf16 arithmetic sets this floor. Saved bytes 2.94x "
                      "lower and the loss within 1 % pass"),
}


@pytest.mark.parametrize("case,ratio,expected", [
    pytest.param(*c, marks=[pytest.mark.xfail(strict=True, reason=XFAIL[c[0]])] if c[0] in XFAIL else [])
    for c in CASES], ids=[c[0] for c in CASES])
def test_model(case, ratio, expected):
    zoo.check_case(case, ratio, expected, steps=4)
