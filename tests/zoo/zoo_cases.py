# zoo_cases.py: the zoo's models (random weights from configs, small shapes, nothing downloaded)
# and their training loops; each case takes zoo.Run and reports gradients and losses to it.
import contextlib
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "engine"))
import models  # noqa: E402  (stdlib source text as training data)

CASES = {}


def case(fn):
    CASES[fn.__name__.replace("_", "-")] = fn
    return fn


def amp(dtype):
    """bf16 autocast on the CPU, or nothing."""
    return torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()


def loop(run, model, batches, loss_fn, lr=3e-3, dtype=None, params=None):
    """AdamW over batches: the plain training loop most of the zoo uses."""
    run.watch(model)
    opt = torch.optim.AdamW(params if params is not None else model.parameters(), lr=lr)
    model.train()
    for batch in batches:
        with amp(dtype):
            loss = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        run.backward_done(model)
        opt.step()
        run.step_done(loss.item())


# ---- transformers: a tiny Llama-style causal LM on the standard library's source text ----

SEQ, BATCH, VOCAB = 64, 8, 256


def text_batches(steps, seed=0, batch=BATCH, seq=SEQ):
    """Right-padded batches of byte tokens: input_ids, attention_mask, labels (-100 on padding)."""
    data = models.stdlib_text(300_000)
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        ix = torch.randint(0, len(data) - seq, (batch,), generator=g)
        ids = torch.stack([data[i:i + seq] for i in ix])
        lens = torch.randint(seq // 2, seq + 1, (batch,), generator=g)
        lens[0] = seq
        mask = (torch.arange(seq)[None, :] < lens[:, None]).long()
        ids = ids * mask  # pad id 0
        out.append({"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)})
    return out


def llama(layers=2, d=128):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=SEQ,
                      tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    return LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa")


def hf_loss(model, batch):
    return model(**batch).loss


def llama_run(run, dtype=torch.bfloat16, reentrant=None, lora=False):
    model = llama()
    if reentrant is not None:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
    if lora:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                 "gate_proj", "up_proj", "down_proj"]))
    loop(run, model, text_batches(run.steps), hf_loss, lr=3e-3, dtype=dtype,
         params=[p for p in model.parameters() if p.requires_grad])


@case
def llama_bf16(run):
    llama_run(run)


@case
def llama_ckpt_reentrant(run):
    llama_run(run, reentrant=True)


@case
def llama_ckpt_nonreentrant(run):
    llama_run(run, reentrant=False)


@case
def llama_lora(run):
    llama_run(run, lora=True)


@case
def llama_trainer(run):
    """The HF Trainer's own loop (bf16 autocast on the CPU); the gradients of its first step are
    read after its backward, before its optimizer step."""
    import tempfile
    from transformers import Trainer, TrainingArguments

    class Probed(Trainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            run.backward_done(model)
            run.step_done(loss.item())
            return loss

    model = llama()
    run.watch(model)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, max_steps=run.steps, per_device_train_batch_size=BATCH,
                                 learning_rate=3e-3, bf16=True, use_cpu=True, report_to=[],
                                 save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=0,
                                 dataloader_num_workers=0, lr_scheduler_type="constant")
        data = [{k: v[i] for k, v in b.items()} for b in text_batches(run.steps) for i in range(BATCH)]
        Probed(model=model, args=args, train_dataset=data).train()


# ---- vision: torchvision ResNet-18 (channels_last, fp32 and bf16), timm ViT-tiny ----

def image_batches(steps, batch=8, size=32, classes=10, seed=0):
    """Random images of a fixed generator, labels from a fixed random linear rule (learnable)."""
    g = torch.Generator().manual_seed(seed)
    rule = torch.randn(3 * 4 * 4, classes, generator=g)
    out = []
    for _ in range(steps):
        x = torch.randn(batch, 3, size, size, generator=g)
        y = (F.adaptive_avg_pool2d(x, 4).flatten(1) @ rule).argmax(1)
        out.append((x.contiguous(memory_format=torch.channels_last), y))
    return out


def ce_loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(x).float(), y)


def resnet(run, dtype):
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).to(memory_format=torch.channels_last)
    # 64x64, not 32x32: with 32x32 images layer4's maps are 1x1 and most saved tensors are under
    # GACTSHIM_MIN_BYTES (kept), which measured the threshold rather than the codec.
    loop(run, model, image_batches(run.steps, size=64), ce_loss, lr=1e-3, dtype=dtype)


@case
def resnet18_fp32(run):
    resnet(run, None)


@case
def resnet18_bf16(run):
    resnet(run, torch.bfloat16)


@case
def vit_tiny(run):
    import timm
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=4,
                              num_classes=10)
    loop(run, model, [(x.contiguous(), y) for x, y in image_batches(run.steps)], ce_loss, lr=1e-3)


# ---- nn.TransformerEncoder with a key padding mask; a PyG GCN on a random graph ----

@case
def transformer_encoder(run):
    torch.manual_seed(0)
    d = 128
    layer = torch.nn.TransformerEncoderLayer(d, 4, dim_feedforward=2 * d, dropout=0.0, batch_first=True)
    model = torch.nn.ModuleDict({"emb": torch.nn.Embedding(VOCAB, d),
                                 "enc": torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False),
                                 "head": torch.nn.Linear(d, VOCAB)})

    def loss_fn(m, b):
        pad = b["attention_mask"] == 0
        h = m["enc"](m["emb"](b["input_ids"]), src_key_padding_mask=pad)
        logits = m["head"](h[:, :-1])
        return F.cross_entropy(logits.reshape(-1, VOCAB), b["labels"][:, 1:].reshape(-1), ignore_index=-100)
    loop(run, model, text_batches(run.steps), loss_fn, lr=1e-3)


@case
def gcn(run):
    from torch_geometric.nn import GCNConv
    g = torch.Generator().manual_seed(0)
    n, feats, classes = 4000, 32, 7
    x = torch.randn(n, feats, generator=g)
    edges = torch.randint(0, n, (2, 20000), generator=g)
    y = (x[:, :classes] + 0.5 * torch.randn(n, classes, generator=g)).argmax(1)
    torch.manual_seed(0)

    class GCN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = GCNConv(feats, 64), GCNConv(64, classes)

        def forward(self, x, e):
            return self.c2(F.relu(self.c1(x, e)), e)
    loop(run, GCN(), [(x, edges)] * run.steps, lambda m, b: F.cross_entropy(m(*b), y), lr=1e-2)


# ---- training loops of libraries: Lightning's Trainer, accelerate ----

def mlp(d_in=256, width=512, classes=10):
    torch.manual_seed(0)
    return models.MLP(d_in=d_in, width=width, depth=3, d_out=classes)


def vector_batches(steps, batch=128, d_in=256, classes=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    rule = torch.randn(d_in, classes, generator=g)
    out = []
    for _ in range(steps):
        x = torch.randn(batch, d_in, generator=g)
        out.append((x, (x @ rule).argmax(1)))
    return out


@case
def lightning(run):
    import lightning.pytorch as pl

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = mlp()

        def training_step(self, batch, i):
            loss = ce_loss(self.net, batch)
            self.last = loss.detach()
            return loss

        def on_before_optimizer_step(self, opt):
            run.backward_done(self)

        def on_train_batch_end(self, out, batch, i):
            run.step_done(self.last.item())

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=3e-3)

    module = Module()
    run.watch(module)
    data = torch.utils.data.DataLoader(vector_batches(run.steps), batch_size=None, num_workers=0)
    trainer = pl.Trainer(max_steps=run.steps, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, data)


@case
def accelerate(run):
    from accelerate import Accelerator
    acc = Accelerator(cpu=True)
    model = mlp()
    run.watch(model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.utils.data.DataLoader(vector_batches(run.steps), batch_size=None, num_workers=0)
    model, opt, data = acc.prepare(model, opt, data)
    model.train()
    for batch in data:
        loss = ce_loss(model, batch)
        opt.zero_grad()
        acc.backward(loss)
        run.backward_done(model)
        opt.step()
        run.step_done(loss.item())


# ---- torch.compile (inductor on the CPU): an MLP and a transformer block with a frozen part ----

@case
def compile_mlp(run):
    model = mlp()
    compiled = torch.compile(model)
    run.watch(model)
    loop(run, model, vector_batches(run.steps), lambda m, b: ce_loss(compiled, b))


@case
def compile_block(run):
    """A pre-norm block with softmax attention, its first layer frozen (a frozen weight the
    compiled backward still needs), trained as a char LM."""
    torch.manual_seed(0)
    d = 128
    model = torch.nn.ModuleDict({"emb": torch.nn.Embedding(VOCAB, d), "block": models.Block(d),
                                 "head": torch.nn.Linear(d, VOCAB)})
    model["block"].fc1.weight.requires_grad_(False)

    def forward(m, ids):
        return m["head"](m["block"](m["emb"](ids)))
    compiled = torch.compile(forward)

    def loss_fn(m, b):
        logits = compiled(m, b["input_ids"][:, :-1])
        return F.cross_entropy(logits.reshape(-1, VOCAB), b["input_ids"][:, 1:].reshape(-1))
    loop(run, model, text_batches(run.steps), loss_fn, params=[p for p in model.parameters() if p.requires_grad])
