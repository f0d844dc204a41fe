#!/usr/bin/python3
"""Independent float64 GPT-2 reference (PyTorch) for Lantern's test fixtures.

OFFLINE ONLY: this script produces committed fixture files; it is never run by
the test suite. It reads a Hugging Face GPT-2 folder (config.json +
model.safetensors), runs a plain nanoGPT-style forward pass in float64 and
records the logits plus every TransformerLens-named hook activation, then
writes them as float32 into a safetensors file.

Usage:
  /usr/bin/python3 scripts/reference/gpt2_reference.py [options] \
      <model_folder> <out.safetensors> <ids> [<ids> ...]

  <ids>  comma-separated token ids of one prompt, e.g. 464,2068,7586
  One prompt: tensors stored without prefix, batch dim 1 kept.
  Several prompts of equal length: one batch, tensors [B, ...], no prefix.
  Several prompts of different lengths (or --split): each prompt computed
  separately (no padding), tensors stored as "p{i}.<name>" with batch dim 1.

Options:
  --grad POS:TOKEN   also store grad_resid_pre0 = d log_softmax(logits)[b,POS,TOKEN]
                     / d blocks.0.hook_resid_pre (POS may be negative: -1 = last)
  --split            always store prompts separately with the p{i}. prefix
  --normalized-after-affine
                     store lnX.hook_normalized AFTER weight and bias (TL's
                     unfolded LayerNorm) instead of the default BEFORE
                     (TL's LayerNormPre, i.e. from_pretrained with fold_ln)
  --selfcheck        after computing, verify internal identities and compare
                     against independent torch.nn formulations; also re-read
                     the written file. Exits non-zero on failure.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

GENERATOR = "scripts/reference/gpt2_reference.py"
DT = torch.float64


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

class Config:
    def __init__(self, d):
        self.n_layer = int(d["n_layer"])
        self.n_head = int(d["n_head"])
        self.n_embd = int(d["n_embd"])
        self.n_positions = int(d.get("n_positions", d.get("n_ctx", 1024)))
        self.vocab_size = int(d["vocab_size"])
        self.eps = float(d.get("layer_norm_epsilon", 1e-5))
        self.act = d.get("activation_function", "gelu_new")
        n_inner = d.get("n_inner")
        self.n_inner = int(n_inner) if n_inner is not None else 4 * self.n_embd
        if self.n_embd % self.n_head:
            raise ValueError("n_embd must be divisible by n_head")
        self.d_head = self.n_embd // self.n_head
        if self.act not in ("gelu_new", "gelu"):
            raise ValueError(f"unsupported activation_function {self.act!r}")
        # Checked, not implemented: these would change the math.
        for key, default in (("scale_attn_weights", True),
                             ("scale_attn_by_inverse_layer_idx", False),
                             ("add_cross_attention", False)):
            if key in d and bool(d[key]) != default:
                raise ValueError(f"config {key}={d[key]} is not supported")


def load_model(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = Config(json.load(f))
    raw, _ = read_safetensors(os.path.join(folder, "model.safetensors"))
    w = {}
    for name, arr in raw.items():
        if name.startswith("transformer."):
            name = name[len("transformer."):]
        if name.endswith(".attn.bias") or name.endswith(".attn.masked_bias"):
            continue  # causal-mask buffers, not parameters
        w[name] = torch.from_numpy(np.asarray(arr, dtype=np.float64)).to(DT)
    D, F_, V, P = cfg.n_embd, cfg.n_inner, cfg.vocab_size, cfg.n_positions
    expect = {"wte.weight": (V, D), "wpe.weight": (P, D),
              "ln_f.weight": (D,), "ln_f.bias": (D,)}
    for l in range(cfg.n_layer):
        p = f"h.{l}."
        expect.update({
            p + "ln_1.weight": (D,), p + "ln_1.bias": (D,),
            p + "attn.c_attn.weight": (D, 3 * D), p + "attn.c_attn.bias": (3 * D,),
            p + "attn.c_proj.weight": (D, D), p + "attn.c_proj.bias": (D,),
            p + "ln_2.weight": (D,), p + "ln_2.bias": (D,),
            p + "mlp.c_fc.weight": (D, F_), p + "mlp.c_fc.bias": (F_,),
            p + "mlp.c_proj.weight": (F_, D), p + "mlp.c_proj.bias": (D,),
        })
    for k, shape in expect.items():
        if k not in w:
            raise KeyError(f"model.safetensors lacks {k}")
        if tuple(w[k].shape) != shape:
            raise ValueError(f"{k}: shape {tuple(w[k].shape)}, expected {shape}")
    if "lm_head.weight" in w:
        if tuple(w["lm_head.weight"].shape) != (V, D):
            raise ValueError("lm_head.weight has wrong shape")
        w["W_U"] = w["lm_head.weight"].T.contiguous()      # [D, V]
    else:
        w["W_U"] = w["wte.weight"].T.contiguous()          # tied
    return cfg, w


# --------------------------------------------------------------------------
# Forward pass (plain, float64)
# --------------------------------------------------------------------------

def gelu(x, kind):
    if kind == "gelu_new":
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def layer_norm(x, weight, bias, eps, rec, name, after_affine):
    x = x - x.mean(-1, keepdim=True)
    scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    normed = x / scale
    out = normed * weight + bias
    rec[name + ".hook_scale"] = scale
    rec[name + ".hook_normalized"] = out if after_affine else normed
    return out


def forward(cfg, w, tokens, resid_pre0=None, after_affine=False):
    """tokens: LongTensor [B, T]. Returns dict of recorded tensors (float64).

    If resid_pre0 is given it replaces hook_embed + hook_pos_embed (used for
    gradients / finite differences)."""
    B, T = tokens.shape
    H, dh, D = cfg.n_head, cfg.d_head, cfg.n_embd
    rec = {}
    embed = w["wte.weight"][tokens]                             # [B,T,D]
    pos = w["wpe.weight"][:T].unsqueeze(0).expand(B, T, D)      # [B,T,D]
    rec["hook_embed"] = embed
    rec["hook_pos_embed"] = pos
    x = embed + pos if resid_pre0 is None else resid_pre0
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(cfg.n_layer):
        p, b = f"h.{l}.", f"blocks.{l}."
        rec[b + "hook_resid_pre"] = x
        h = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], cfg.eps,
                       rec, b + "ln1", after_affine)
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # [B,T,3D]
        q, k, v = qkv.split(D, dim=-1)
        q = q.reshape(B, T, H, dh)
        k = k.reshape(B, T, H, dh)
        v = v.reshape(B, T, H, dh)
        rec[b + "attn.hook_q"], rec[b + "attn.hook_k"], rec[b + "attn.hook_v"] = q, k, v
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh)
        scores = scores.masked_fill(~causal, float("-inf"))
        rec[b + "attn.hook_attn_scores"] = scores
        pattern = torch.softmax(scores, dim=-1)
        pattern = torch.where(torch.isnan(pattern), torch.zeros_like(pattern), pattern)
        rec[b + "attn.hook_pattern"] = pattern
        z = torch.einsum("bhqk,bkhd->bqhd", pattern, v)              # [B,T,H,dh]
        rec[b + "attn.hook_z"] = z
        attn_out = z.reshape(B, T, D) @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        rec[b + "hook_attn_out"] = attn_out
        x = x + attn_out
        rec[b + "hook_resid_mid"] = x
        h = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], cfg.eps,
                       rec, b + "ln2", after_affine)
        pre = h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]
        rec[b + "mlp.hook_pre"] = pre
        post = gelu(pre, cfg.act)
        rec[b + "mlp.hook_post"] = post
        mlp_out = post @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        rec[b + "hook_mlp_out"] = mlp_out
        x = x + mlp_out
        rec[b + "hook_resid_post"] = x
    h = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], cfg.eps, rec, "ln_final", after_affine)
    rec["logits"] = h @ w["W_U"]
    return rec


def run_prompt_group(cfg, w, token_lists, grad_spec, after_affine):
    """Computes one batch of equal-length prompts. Returns dict of float64/int tensors."""
    tokens = torch.tensor(token_lists, dtype=torch.long)
    with torch.no_grad():
        rec = forward(cfg, w, tokens, after_affine=after_affine)
    out = {k: v.detach().clone() for k, v in rec.items()}
    out["tokens"] = tokens.to(torch.int32)
    if grad_spec is not None:
        out["grad_resid_pre0"] = input_gradient(cfg, w, tokens, grad_spec)
    return out


def resolve_pos(pos, T):
    p = pos + T if pos < 0 else pos
    if not 0 <= p < T:
        raise ValueError(f"--grad position {pos} out of range for a prompt of length {T}")
    return p


def input_gradient(cfg, w, tokens, grad_spec):
    pos, tok = grad_spec
    B, T = tokens.shape
    p = resolve_pos(pos, T)
    if not 0 <= tok < cfg.vocab_size:
        raise ValueError(f"--grad token {tok} out of range")
    with torch.no_grad():
        leaf0 = w["wte.weight"][tokens] + w["wpe.weight"][:T].unsqueeze(0)
    leaf = leaf0.clone().requires_grad_(True)
    rec = forward(cfg, w, tokens, resid_pre0=leaf)
    logp = torch.log_softmax(rec["logits"], dim=-1)[:, p, tok]   # [B]
    # Batch rows are independent, so d(sum)/d leaf[b] = d logp[b] / d leaf[b].
    (g,) = torch.autograd.grad(logp.sum(), leaf)
    return g.detach()


# --------------------------------------------------------------------------
# Self checks
# --------------------------------------------------------------------------

class Checker:
    def __init__(self):
        self.failures = 0
        self.count = 0

    def close(self, name, a, b, tol=1e-9):
        self.count += 1
        a = torch.as_tensor(a, dtype=DT)
        b = torch.as_tensor(b, dtype=DT)
        if a.shape != b.shape:
            print(f"FAIL {name}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
            self.failures += 1
            return
        fin = torch.isfinite(a) & torch.isfinite(b)
        same_inf = torch.equal(torch.isfinite(a), torch.isfinite(b)) and torch.equal(a[~fin], b[~fin])
        err = (a[fin] - b[fin]).abs().max().item() if fin.any() else 0.0
        ref = max(1.0, b[fin].abs().max().item() if fin.any() else 1.0)
        ok = same_inf and err <= tol * ref
        if not ok:
            self.failures += 1
        print(f"{'ok  ' if ok else 'FAIL'} {name}: max abs err {err:.3e}"
              + ("" if same_inf else " (non-finite entries differ)"))

    def true(self, name, cond):
        self.count += 1
        if not cond:
            self.failures += 1
        print(f"{'ok  ' if cond else 'FAIL'} {name}")


def build_nn_blocks(cfg, w):
    """Independent formulation: each GPT-2 block as a pre-LN
    torch.nn.TransformerEncoderLayer (its own LayerNorm, MultiheadAttention,
    Linear and GELU implementations)."""
    act = torch.nn.GELU(approximate="tanh" if cfg.act == "gelu_new" else "none")
    blocks = []
    for l in range(cfg.n_layer):
        p = f"h.{l}."
        layer = torch.nn.TransformerEncoderLayer(
            d_model=cfg.n_embd, nhead=cfg.n_head, dim_feedforward=cfg.n_inner,
            dropout=0.0, activation=act, layer_norm_eps=cfg.eps,
            batch_first=True, norm_first=True, dtype=DT)
        with torch.no_grad():
            layer.norm1.weight.copy_(w[p + "ln_1.weight"])
            layer.norm1.bias.copy_(w[p + "ln_1.bias"])
            layer.self_attn.in_proj_weight.copy_(w[p + "attn.c_attn.weight"].T)
            layer.self_attn.in_proj_bias.copy_(w[p + "attn.c_attn.bias"])
            layer.self_attn.out_proj.weight.copy_(w[p + "attn.c_proj.weight"].T)
            layer.self_attn.out_proj.bias.copy_(w[p + "attn.c_proj.bias"])
            layer.norm2.weight.copy_(w[p + "ln_2.weight"])
            layer.norm2.bias.copy_(w[p + "ln_2.bias"])
            layer.linear1.weight.copy_(w[p + "mlp.c_fc.weight"].T)
            layer.linear1.bias.copy_(w[p + "mlp.c_fc.bias"])
            layer.linear2.weight.copy_(w[p + "mlp.c_proj.weight"].T)
            layer.linear2.bias.copy_(w[p + "mlp.c_proj.bias"])
        layer.train()  # dropout=0; train mode keeps the generic (non fast-path) kernels
        blocks.append(layer)
    return blocks


def selfcheck(cfg, w, group_tokens, rec, after_affine, ck):
    """group_tokens: LongTensor [B,T]; rec: float64 record from forward()."""
    B, T = group_tokens.shape
    H, dh, D = cfg.n_head, cfg.d_head, cfg.n_embd
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    ck.close("resid_pre0 = embed + pos_embed", rec["blocks.0.hook_resid_pre"],
             rec["hook_embed"] + rec["hook_pos_embed"], 0)
    mask_attn = torch.triu(torch.full((T, T), float("-inf"), dtype=DT), diagonal=1)
    for l in range(cfg.n_layer):
        b, p = f"blocks.{l}.", f"h.{l}."
        x = rec[b + "hook_resid_pre"]
        if l > 0:
            ck.close(f"L{l} resid_pre = prev resid_post", x, rec[f"blocks.{l-1}.hook_resid_post"], 0)
        # LayerNorm vs F.layer_norm
        ln_ref = F.layer_norm(x, (D,), eps=cfg.eps)
        ln1 = rec[b + "ln1.hook_normalized"]
        if after_affine:
            ck.close(f"L{l} ln1 (affine) vs F.layer_norm",
                     ln1, F.layer_norm(x, (D,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], cfg.eps))
        else:
            ck.close(f"L{l} ln1.normalized vs F.layer_norm (no affine)", ln1, ln_ref)
        xc = x - x.mean(-1, keepdim=True)
        ck.close(f"L{l} ln1.scale = std", rec[b + "ln1.hook_scale"],
                 torch.sqrt(xc.var(-1, unbiased=False, keepdim=True) + cfg.eps))
        ck.true(f"L{l} ln1.scale shape [B,T,1]", tuple(rec[b + "ln1.hook_scale"].shape) == (B, T, 1))
        # attention structure
        pat = rec[b + "attn.hook_pattern"]
        sc = rec[b + "attn.hook_attn_scores"]
        ck.close(f"L{l} pattern rows sum to 1", pat.sum(-1), torch.ones(B, H, T, dtype=DT))
        ck.true(f"L{l} pattern masked entries == 0", bool((pat[..., ~causal] == 0).all()))
        ck.true(f"L{l} scores masked entries == -inf",
                bool(torch.isneginf(sc[..., ~causal]).all()) and bool(torch.isfinite(sc[..., causal]).all()))
        q, k, v = rec[b + "attn.hook_q"], rec[b + "attn.hook_k"], rec[b + "attn.hook_v"]
        ln1_aff = F.layer_norm(x, (D,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], cfg.eps)
        W = w[p + "attn.c_attn.weight"]
        bb = w[p + "attn.c_attn.bias"]
        for i, (nm, t) in enumerate((("q", q), ("k", k), ("v", v))):
            ref = F.linear(ln1_aff, W[:, i * D:(i + 1) * D].T, bb[i * D:(i + 1) * D]).view(B, T, H, dh)
            ck.close(f"L{l} hook_{nm} vs F.linear", t, ref)
        # scaled dot product attention, written per head with matmul
        for hh in range(H):
            s = q[:, :, hh, :] @ k[:, :, hh, :].transpose(1, 2) / math.sqrt(dh) + mask_attn
            ck.close(f"L{l}h{hh} scores (per-head matmul)", sc[:, hh], s)
            ck.close(f"L{l}h{hh} z = pattern @ v", rec[b + "attn.hook_z"][:, :, hh, :],
                     torch.softmax(s, -1) @ v[:, :, hh, :])
        # MultiheadAttention (independent implementation) for pattern + attn_out
        mha = torch.nn.MultiheadAttention(D, H, dropout=0.0, bias=True, batch_first=True, dtype=DT)
        with torch.no_grad():
            mha.in_proj_weight.copy_(W.T)
            mha.in_proj_bias.copy_(bb)
            mha.out_proj.weight.copy_(w[p + "attn.c_proj.weight"].T)
            mha.out_proj.bias.copy_(w[p + "attn.c_proj.bias"])
            mo, mw = mha(ln1_aff, ln1_aff, ln1_aff, attn_mask=~causal,
                         need_weights=True, average_attn_weights=False)
        ck.close(f"L{l} attn_out vs nn.MultiheadAttention", rec[b + "hook_attn_out"], mo)
        ck.close(f"L{l} pattern vs nn.MultiheadAttention weights", pat, mw)
        ck.close(f"L{l} attn_out = z @ W_O + b_O (per-head sum)", rec[b + "hook_attn_out"],
                 sum(rec[b + "attn.hook_z"][:, :, hh, :] @ w[p + "attn.c_proj.weight"][hh * dh:(hh + 1) * dh]
                     for hh in range(H)) + w[p + "attn.c_proj.bias"])
        ck.close(f"L{l} resid_mid = resid_pre + attn_out", rec[b + "hook_resid_mid"],
                 x + rec[b + "hook_attn_out"], 0)
        xm = rec[b + "hook_resid_mid"]
        ln2_aff = F.layer_norm(xm, (D,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], cfg.eps)
        if after_affine:
            ck.close(f"L{l} ln2 (affine) vs F.layer_norm", rec[b + "ln2.hook_normalized"], ln2_aff)
        else:
            ck.close(f"L{l} ln2.normalized vs F.layer_norm", rec[b + "ln2.hook_normalized"],
                     F.layer_norm(xm, (D,), eps=cfg.eps))
        pre = F.linear(ln2_aff, w[p + "mlp.c_fc.weight"].T, w[p + "mlp.c_fc.bias"])
        ck.close(f"L{l} mlp.hook_pre vs F.linear", rec[b + "mlp.hook_pre"], pre)
        approx = "tanh" if cfg.act == "gelu_new" else "none"
        ck.close(f"L{l} mlp.hook_post vs F.gelu({approx})", rec[b + "mlp.hook_post"],
                 F.gelu(rec[b + "mlp.hook_pre"], approximate=approx))
        ck.close(f"L{l} mlp_out vs F.linear", rec[b + "hook_mlp_out"],
                 F.linear(rec[b + "mlp.hook_post"], w[p + "mlp.c_proj.weight"].T, w[p + "mlp.c_proj.bias"]))
        ck.close(f"L{l} resid_post = resid_mid + mlp_out", rec[b + "hook_resid_post"],
                 xm + rec[b + "hook_mlp_out"], 0)
    xf = rec[f"blocks.{cfg.n_layer - 1}.hook_resid_post"]
    lnf = F.layer_norm(xf, (D,), w["ln_f.weight"], w["ln_f.bias"], cfg.eps)
    if after_affine:
        ck.close("ln_final (affine) vs F.layer_norm", rec["ln_final.hook_normalized"], lnf)
        ck.close("logits = ln_final.normalized @ W_U", rec["logits"], rec["ln_final.hook_normalized"] @ w["W_U"])
    else:
        ck.close("ln_final.normalized vs F.layer_norm", rec["ln_final.hook_normalized"],
                 F.layer_norm(xf, (D,), eps=cfg.eps))
        ck.close("logits = (normalized*w+b) @ W_U", rec["logits"],
                 (rec["ln_final.hook_normalized"] * w["ln_f.weight"] + w["ln_f.bias"]) @ w["W_U"])

    # Whole model with nn.TransformerEncoderLayer blocks (independent path).
    blocks = build_nn_blocks(cfg, w)
    with torch.no_grad():
        h = F.embedding(group_tokens, w["wte.weight"]) + F.embedding(torch.arange(T), w["wpe.weight"])
        for l, layer in enumerate(blocks):
            h = layer(h, src_mask=~causal)
            ck.close(f"L{l} resid_post vs nn.TransformerEncoderLayer(norm_first)",
                     rec[f"blocks.{l}.hook_resid_post"], h)
        logits = F.linear(F.layer_norm(h, (D,), w["ln_f.weight"], w["ln_f.bias"], cfg.eps), w["W_U"].T)
    ck.close("logits vs nn.TransformerEncoderLayer stack", rec["logits"], logits)


def check_gradient(cfg, w, tokens, grad_spec, grad, ck, n_coords=6):
    """Central finite differences of the float64 model at a few coordinates."""
    pos, tok = grad_spec
    B, T = tokens.shape
    p = resolve_pos(pos, T)
    with torch.no_grad():
        base = w["wte.weight"][tokens] + w["wpe.weight"][:T].unsqueeze(0)

        def f(x):
            return torch.log_softmax(forward(cfg, w, tokens, resid_pre0=x)["logits"], -1)[:, p, tok]

        gen = torch.Generator().manual_seed(0)
        errs, ok = [], True
        coords = [(bi, int(torch.randint(0, p + 1, (1,), generator=gen)),
                   int(torch.randint(0, cfg.n_embd, (1,), generator=gen)))
                  for bi in range(B) for _ in range(n_coords)]
        for (bi, t, d) in coords:
            g = grad[bi, t, d].item()
            # Several step sizes: sharp (e.g. large random) models need small
            # steps, smooth ones larger; keep the best agreement.
            def cd(eps):
                xp = base.clone(); xp[bi, t, d] += eps
                xm = base.clone(); xm[bi, t, d] -= eps
                return (f(xp)[bi] - f(xm)[bi]).item() / (2 * eps)
            best = float("inf")
            for eps in (1e-3, 1e-4, 1e-5, 1e-6):
                d1, d2 = cd(eps), cd(eps / 2)
                for fd in (d1, d2, (4 * d2 - d1) / 3):  # plain and Richardson
                    best = min(best, abs(fd - g) / max(1.0, abs(g)))
            errs.append(best)
            ok = ok and best <= 1e-6
        ck.true(f"grad_resid_pre0 vs central finite differences ({len(coords)} coords, "
                f"max rel err {max(errs):.2e})", ok)
        ck.true("grad_resid_pre0 is zero after position", bool((grad[:, p + 1:] == 0).all()))


def check_codecs(ck):
    """BF16/F16 decoding used by the loader vs torch's own conversions."""
    from safetensors_io import bf16_bits_to_f32, f32_to_bf16_bits
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4096, generator=gen, dtype=torch.float32) * 10
    xb = x.to(torch.bfloat16)
    bits = xb.view(torch.int16).numpy().view(np.uint16)
    ck.true("BF16 decode == torch bfloat16->float32",
            np.array_equal(bf16_bits_to_f32(bits), xb.to(torch.float32).numpy()))
    ck.true("BF16 encode (round-nearest-even) == torch float32->bfloat16",
            np.array_equal(f32_to_bf16_bits(x.numpy()), bits))
    xh = x.to(torch.float16)
    ck.true("F16 decode == torch float16->float32",
            np.array_equal(xh.numpy().view("<f2").astype(np.float32), xh.to(torch.float32).numpy()))


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def parse_ids(s):
    try:
        ids = [int(t) for t in s.split(",") if t.strip() != ""]
    except ValueError:
        raise SystemExit(f"bad token id list: {s!r}")
    if not ids:
        raise SystemExit(f"empty token id list: {s!r}")
    return ids


def parse_grad(s):
    try:
        a, b = s.split(":")
        return int(a), int(b)
    except ValueError:
        raise SystemExit(f"--grad expects POS:TOKEN, got {s!r}")


def to_f32_numpy(t):
    if t.dtype in (torch.int32, torch.int64):
        return t.cpu().numpy().astype(np.int32)
    return t.detach().cpu().numpy().astype(np.float32)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Independent float64 GPT-2 reference: logits + TransformerLens-named activations.")
    ap.add_argument("model_folder")
    ap.add_argument("out")
    ap.add_argument("prompts", nargs="+", help="comma-separated token ids, one argument per prompt")
    ap.add_argument("--grad", type=parse_grad, default=None, metavar="POS:TOKEN")
    ap.add_argument("--split", action="store_true")
    ap.add_argument("--normalized-after-affine", action="store_true")
    ap.add_argument("--selfcheck", action="store_true")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Let "--grad -1:7" work (argparse would take "-1:7" for an option).
    for i in range(len(argv) - 1):
        if argv[i] == "--grad":
            argv[i:i + 2] = ["--grad=" + argv[i + 1]]
            break
    args = ap.parse_args(argv)

    torch.set_grad_enabled(True)
    cfg, w = load_model(args.model_folder)
    prompts = [parse_ids(s) for s in args.prompts]
    for i, ids in enumerate(prompts):
        if len(ids) > cfg.n_positions:
            raise SystemExit(f"prompt {i}: {len(ids)} tokens > n_positions {cfg.n_positions}")
        bad = [t for t in ids if not 0 <= t < cfg.vocab_size]
        if bad:
            raise SystemExit(f"prompt {i}: token ids out of range: {bad}")

    same_len = len({len(p) for p in prompts}) == 1
    if len(prompts) == 1 or (same_len and not args.split):
        groups = [("", prompts)]
    else:
        groups = [(f"p{i}.", [ids]) for i, ids in enumerate(prompts)]

    tensors = {}
    ck = Checker()
    for prefix, toks in groups:
        res = run_prompt_group(cfg, w, toks, args.grad, args.normalized_after_affine)
        for k, v in res.items():
            tensors[prefix + k] = to_f32_numpy(v)
        if args.selfcheck:
            print(f"== selfcheck {prefix or 'batch'} (B={len(toks)}, T={len(toks[0])}) ==")
            tt = torch.tensor(toks, dtype=torch.long)
            rec = {k: v for k, v in res.items() if k not in ("tokens", "grad_resid_pre0")}
            selfcheck(cfg, w, tt, rec, args.normalized_after_affine, ck)
            if args.grad is not None:
                check_gradient(cfg, w, tt, args.grad, res["grad_resid_pre0"], ck)

    meta = {"generator": GENERATOR, "dtype": "float64->float32",
            "normalized": "after_affine" if args.normalized_after_affine else "before_affine",
            "activation_function": cfg.act}
    if args.grad is not None:
        meta["grad"] = f"{args.grad[0]}:{args.grad[1]}"
    write_safetensors(args.out, tensors, metadata=meta)
    print(f"wrote {len(tensors)} tensors to {args.out}")

    if args.selfcheck:
        check_codecs(ck)
        back, bmeta = read_safetensors(args.out)
        ck.true("round trip: same tensor names", sorted(back) == sorted(tensors))
        ck.true("round trip: metadata", bmeta.get("generator") == GENERATOR)
        ck.true("round trip: bit-identical data",
                all(back[k].dtype == tensors[k].dtype and back[k].shape == tensors[k].shape
                    and np.array_equal(back[k], tensors[k], equal_nan=True) for k in tensors))
        print(f"selfcheck: {ck.count - ck.failures}/{ck.count} passed")
        if ck.failures:
            sys.exit(1)


if __name__ == "__main__":
    main()
