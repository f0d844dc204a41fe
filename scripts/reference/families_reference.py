#!/usr/bin/python3
"""Independent float64 reference (PyTorch) for several Hugging Face decoder families.

OFFLINE ONLY: produces committed fixture files for Lantern's tests; the test
suite never runs it. It reads a Hugging Face model folder (config.json +
model.safetensors, or a sharded model.safetensors.index.json), runs the
forward pass written out from the published equations in float64, and writes
the logits and every TransformerLens-named hook activation as float32.

Families (config.json model_type): llama, mistral, qwen2, qwen3, gemma,
gemma2, gemma3_text, gpt_neox, phi3.

Usage:
  /usr/bin/python3 scripts/reference/families_reference.py [options] \
      <model_folder> <out.safetensors> <ids> [<ids> ...]
  /usr/bin/python3 scripts/reference/families_reference.py --selftest

  <ids>  comma-separated token ids of one prompt, e.g. 3,14,15,9
  One prompt: tensors stored without prefix, batch dim 1.
  Several prompts of equal length: one batch [B, ...], no prefix (unless --split).
  Several prompts of different lengths (or --split): each computed separately,
  stored as "p{i}.<name>" with batch dim 1.

Options:
  --grad POS:TOKEN  also store grad_resid_pre0 = d log_softmax(logits)[b,POS,TOKEN]
                    / d blocks.0.hook_resid_pre (that tensor is the leaf; POS may
                    be negative: -1 = last)
  --split           always store prompts separately with the p{i}. prefix
  --selfcheck       verify the results against independent formulations
                    (explicit loops, complex-number rotary, F.linear/F.layer_norm,
                    finite differences, file round trip); exit 1 on failure
  --selftest        no model folder: build tiny random models of every family in
                    a temporary folder and run the selfcheck plus cross-family
                    equivalence tests on them; exit 1 on failure
"""

import argparse
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

GENERATOR = "scripts/reference/families_reference.py"
DT = torch.float64
FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "gpt_neox", "phi3")
GEMMAS = ("gemma", "gemma2", "gemma3_text")


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------

def _opt(d, key, default):
    """HF semantics: a key that is absent takes the class default; a key that
    is present keeps its value (even null)."""
    return d[key] if key in d else default


class LayerSpec:
    def __init__(self, sliding, window, inv_freq, rot_dim, rope_desc):
        self.sliding = sliding      # bool: a sliding-window layer
        self.window = window        # None or int W: key j visible iff 0 <= i-j < W
        self.inv_freq = inv_freq    # float64 [rot_dim/2]
        self.rot_dim = rot_dim      # rotary dims (the first rot_dim of each head)
        self.rope_desc = rope_desc  # dict describing the rope (for the independent check)


class Config:
    def __init__(self, d):
        mt = d.get("model_type")
        if mt not in FAMILIES:
            raise ValueError(f"unsupported model_type {mt!r} (supported: {', '.join(FAMILIES)})")
        self.raw = d
        self.family = mt
        for key in ("num_local_experts", "num_experts", "n_routed_experts"):
            if d.get(key):
                raise NotImplementedError(f"mixture of experts ({key}) is not supported")
        self.n_layers = int(d["num_hidden_layers"])
        self.d_model = int(d["hidden_size"])
        self.n_heads = int(d["num_attention_heads"])
        kv = d.get("num_key_value_heads")
        self.n_kv = int(kv) if kv is not None else self.n_heads
        if self.n_heads % self.n_kv:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        self.vocab = int(d["vocab_size"])
        self.d_ff = int(d["intermediate_size"])
        neox = mt == "gpt_neox"
        gemma = mt in GEMMAS
        # head_dim: absent -> the HF class default (256 for Gemma, 128 for Qwen3,
        # else hidden/heads); null -> hidden/heads.
        hd_default = 256 if gemma else (128 if mt == "qwen3" else None)
        hd = None if neox else _opt(d, "head_dim", hd_default)
        self.d_head = int(hd) if hd is not None else self.d_model // self.n_heads
        if hd is None and self.d_model % self.n_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")

        # norms
        if neox:
            self.norm = "ln"
            self.eps = float(_opt(d, "layer_norm_eps", 1e-5))
        else:
            self.norm = "rms1p" if gemma else "rms"
            self.eps = float(_opt(d, "rms_norm_eps", 1e-5 if mt == "phi3" else 1e-6))
        self.qk_norm = {"qwen3": "rms", "gemma3_text": "rms1p"}.get(mt)
        self.sandwich = mt in ("gemma2", "gemma3_text")
        self.parallel = bool(_opt(d, "use_parallel_residual", True)) if neox else False

        # activation
        if gemma:
            act = d.get("hidden_activation")
            self.act = act if act is not None else "gelu_pytorch_tanh"
        else:
            self.act = _opt(d, "hidden_act", "gelu" if neox else "silu")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"unsupported activation {self.act!r}")

        # biases
        ab = bool(_opt(d, "attention_bias", neox))
        if mt in ("llama", "qwen3") or gemma or neox:
            self.qkv_bias, self.o_bias = ab, ab
        elif mt == "qwen2":
            self.qkv_bias, self.o_bias = True, False
        else:  # mistral, phi3: no projection biases
            self.qkv_bias, self.o_bias = False, False
        self.mlp_bias = True if neox else (bool(_opt(d, "mlp_bias", False)) if mt == "llama" else False)

        self.tied = bool(_opt(d, "tie_word_embeddings", gemma))
        self.embed_scale = math.sqrt(self.d_model) if gemma else 1.0

        # attention scale and soft-capping
        if mt in ("gemma2", "gemma3_text"):
            self.scale = float(_opt(d, "query_pre_attn_scalar", 256)) ** -0.5
        else:
            self.scale = self.d_head ** -0.5
        if mt == "gemma2":
            self.attn_cap = _opt(d, "attn_logit_softcapping", 50.0)
            self.final_cap = _opt(d, "final_logit_softcapping", 30.0)
        elif mt == "gemma3_text":
            self.attn_cap = _opt(d, "attn_logit_softcapping", None)
            self.final_cap = _opt(d, "final_logit_softcapping", None)
        else:
            self.attn_cap = self.final_cap = None
        self.attn_cap = float(self.attn_cap) if self.attn_cap is not None else None
        self.final_cap = float(self.final_cap) if self.final_cap is not None else None
        if d.get("use_bidirectional_attention"):
            raise NotImplementedError("use_bidirectional_attention is not supported")

        self.layers = [self._layer_spec(l) for l in range(self.n_layers)]

    # -- sliding windows -----------------------------------------------------
    def _is_sliding(self, l):
        d, mt = self.raw, self.family
        lt = d.get("layer_types")
        if mt in ("qwen2", "qwen3"):
            if d.get("use_sliding_window"):
                raise NotImplementedError(f"{mt} with use_sliding_window=true is not supported")
            return False
        if lt is not None and mt in ("gemma2", "gemma3_text"):
            if len(lt) != self.n_layers:
                raise ValueError("layer_types must have num_hidden_layers entries")
            if lt[l] not in ("sliding_attention", "full_attention"):
                raise ValueError(f"unsupported layer type {lt[l]!r}")
            return lt[l] == "sliding_attention"
        if lt is not None and any(t != "full_attention" for t in lt) and mt not in ("mistral", "phi3"):
            raise NotImplementedError(f"{mt}: layer_types {lt} not supported")
        if mt == "gemma2":
            return l % 2 == 0
        if mt == "gemma3_text":
            pat = d.get("sliding_window_pattern", d.get("_sliding_window_pattern", 6))
            pat = 6 if pat is None else int(pat)
            return (l + 1) % pat != 0
        if mt in ("mistral", "phi3"):
            return True   # the window (if not null) applies to every layer
        return False

    def _window(self, sliding):
        if not sliding:
            return None
        default = {"mistral": 4096, "phi3": None, "gemma2": 4096, "gemma3_text": 4096}[self.family]
        w = _opt(self.raw, "sliding_window", default)
        if w is None:
            return None
        w = int(w)
        if w < 1:
            raise ValueError(f"sliding_window must be >= 1, got {w}")
        return w

    # -- rotary --------------------------------------------------------------
    def _rope_params(self, layer_type):
        """Returns dict(rope_type, theta, partial, plus scaling fields)."""
        d, mt = self.raw, self.family
        rp = d.get("rope_parameters")
        if rp is not None:
            if any(isinstance(v, dict) for v in rp.values()):    # nested per layer type (v5 Gemma 3)
                if layer_type not in rp:
                    raise ValueError(f"rope_parameters has no entry for {layer_type}")
                rp = rp[layer_type]
            p = dict(rp)
            p["rope_type"] = p.get("rope_type", p.get("type", "default"))
            if "rope_theta" not in p:
                raise ValueError("rope_parameters lacks rope_theta")
            p["theta"] = float(p["rope_theta"])
            if "partial_rotary_factor" not in p or p["partial_rotary_factor"] is None:
                p["partial_rotary_factor"] = (d.get("rotary_pct", 0.25) if mt == "gpt_neox"
                                              else d.get("partial_rotary_factor", 1.0))
            p["partial"] = float(p["partial_rotary_factor"] if p["partial_rotary_factor"] is not None else 1.0)
            return p
        # transformers 4.x layout
        if mt == "gpt_neox":
            theta = _opt(d, "rotary_emb_base", d.get("rope_theta", 10000.0))
            partial = _opt(d, "rotary_pct", d.get("partial_rotary_factor", 0.25))
        else:
            theta = _opt(d, "rope_theta", 1_000_000.0 if mt == "gemma3_text" else 10000.0)
            partial = d.get("partial_rotary_factor", 1.0)
        scaling = d.get("rope_scaling")
        if mt == "gemma3_text" and layer_type == "sliding_attention":
            theta = _opt(d, "rope_local_base_freq", 10000.0)
            scaling = None       # local layers: default rope, no scaling
        p = dict(scaling or {})
        p["rope_type"] = p.get("rope_type", p.get("type", "default"))
        p["theta"] = float(theta)
        p["partial"] = float(partial if partial is not None else 1.0)
        return p

    def _layer_spec(self, l):
        sliding = self._is_sliding(l)
        window = self._window(sliding)
        layer_type = "sliding_attention" if (sliding and self.family in ("gemma2", "gemma3_text")) else "full_attention"
        p = self._rope_params(layer_type)
        rot = int(self.d_head * p["partial"])
        if rot % 2 or rot <= 0 or rot > self.d_head:
            raise ValueError(f"rotary dims {rot} (head_dim {self.d_head} x {p['partial']}) must be even and in (0, head_dim]")
        inv_freq = rope_inv_freq(p, rot)
        return LayerSpec(sliding, window, inv_freq, rot, p)


def rope_inv_freq(p, rot):
    """inv_freq[i] = theta^(-2i/rot), then the scaling of p['rope_type']."""
    theta = p["theta"]
    inv = theta ** (-(torch.arange(0, rot, 2, dtype=DT) / rot))
    kind = p["rope_type"]
    if kind == "default":
        return inv
    if kind == "linear":
        return inv / float(p["factor"])
    if kind == "llama3":
        factor = float(p["factor"])
        lo, hi = float(p["low_freq_factor"]), float(p["high_freq_factor"])
        old = float(p["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        lo_wav, hi_wav = old / lo, old / hi
        out = torch.where(wavelen > lo_wav, inv / factor, inv)         # low frequencies: / factor
        smooth = (old / wavelen - lo) / (hi - lo)
        blended = (1 - smooth) * out / factor + smooth * out
        medium = (wavelen >= hi_wav) & (wavelen <= lo_wav)
        return torch.where(medium, blended, out)
    raise NotImplementedError(f"rope type {kind!r} is not supported (only default, linear, llama3)")


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

def read_weights(folder):
    single = os.path.join(folder, "model.safetensors")
    index = os.path.join(folder, "model.safetensors.index.json")
    raw = {}
    if os.path.exists(single):
        raw, _ = read_safetensors(single)
    elif os.path.exists(index):
        with open(index) as f:
            wm = json.load(f)["weight_map"]
        for shard in sorted(set(wm.values())):
            part, _ = read_safetensors(os.path.join(folder, shard))
            for k, v in part.items():
                if k in raw:
                    raise ValueError(f"tensor {k} appears in several shards")
                raw[k] = v
        missing = sorted(set(wm) - set(raw))
        if missing:
            raise ValueError(f"index lists tensors not found in the shards: {missing[:5]}")
    else:
        raise FileNotFoundError(f"{folder}: neither model.safetensors nor model.safetensors.index.json")
    out = {}
    for k, v in raw.items():
        if v.dtype.kind != "f":
            raise ValueError(f"tensor {k}: non-float dtype {v.dtype}")
        out[k] = torch.from_numpy(np.asarray(v, dtype=np.float64))
    return out


class Weights:
    """Canonical per-layer weights (HF Linear layout [out, in])."""

    def __init__(self, cfg, raw):
        self.cfg = cfg
        self.raw = raw
        self.used = set()
        c = cfg
        D, H, K, dh, Fd, V = c.d_model, c.n_heads, c.n_kv, c.d_head, c.d_ff, c.vocab
        neox = c.family == "gpt_neox"
        pre = "gpt_neox." if neox else "model."
        self.embed = self.take(pre + ("embed_in.weight" if neox else "embed_tokens.weight"), (V, D))
        self.layers = []
        for l in range(c.n_layers):
            p = f"{pre}layers.{l}."
            w = {}
            if neox:
                w["ln1_w"] = self.take(p + "input_layernorm.weight", (D,))
                w["ln1_b"] = self.take(p + "input_layernorm.bias", (D,))
                w["ln2_w"] = self.take(p + "post_attention_layernorm.weight", (D,))
                w["ln2_b"] = self.take(p + "post_attention_layernorm.bias", (D,))
                w["qkv_fused"] = self.take(p + "attention.query_key_value.weight", (3 * H * dh, D))
                w["qkv_fused_b"] = (self.take(p + "attention.query_key_value.bias", (3 * H * dh,))
                                    if c.qkv_bias else None)
                w["o"] = self.take(p + "attention.dense.weight", (D, H * dh))
                w["o_b"] = self.take(p + "attention.dense.bias", (D,)) if c.o_bias else None
                w["in"] = self.take(p + "mlp.dense_h_to_4h.weight", (Fd, D))
                w["in_b"] = self.take(p + "mlp.dense_h_to_4h.bias", (Fd,))
                w["out"] = self.take(p + "mlp.dense_4h_to_h.weight", (D, Fd))
                w["out_b"] = self.take(p + "mlp.dense_4h_to_h.bias", (D,))
                self.skip(p + "attention.bias", p + "attention.masked_bias",
                          p + "attention.rotary_emb.inv_freq")
            else:
                w["ln1_w"] = self.take(p + "input_layernorm.weight", (D,))
                if c.sandwich:
                    w["ln1_post_w"] = self.take(p + "post_attention_layernorm.weight", (D,))
                    w["ln2_w"] = self.take(p + "pre_feedforward_layernorm.weight", (D,))
                    w["ln2_post_w"] = self.take(p + "post_feedforward_layernorm.weight", (D,))
                else:
                    w["ln2_w"] = self.take(p + "post_attention_layernorm.weight", (D,))
                a = p + "self_attn."
                if c.family == "phi3":
                    w["qkv_cat"] = self.take(a + "qkv_proj.weight", ((H + 2 * K) * dh, D))
                else:
                    w["q"] = self.take(a + "q_proj.weight", (H * dh, D))
                    w["k"] = self.take(a + "k_proj.weight", (K * dh, D))
                    w["v"] = self.take(a + "v_proj.weight", (K * dh, D))
                    if c.qkv_bias:
                        w["q_b"] = self.take(a + "q_proj.bias", (H * dh,))
                        w["k_b"] = self.take(a + "k_proj.bias", (K * dh,))
                        w["v_b"] = self.take(a + "v_proj.bias", (K * dh,))
                w["o"] = self.take(a + "o_proj.weight", (D, H * dh))
                w["o_b"] = self.take(a + "o_proj.bias", (D,)) if c.o_bias else None
                if c.qk_norm:
                    w["q_norm"] = self.take(a + "q_norm.weight", (dh,))
                    w["k_norm"] = self.take(a + "k_norm.weight", (dh,))
                m = p + "mlp."
                if c.family == "phi3":
                    w["gate_up"] = self.take(m + "gate_up_proj.weight", (2 * Fd, D))
                else:
                    w["gate"] = self.take(m + "gate_proj.weight", (Fd, D))
                    w["up"] = self.take(m + "up_proj.weight", (Fd, D))
                w["down"] = self.take(m + "down_proj.weight", (D, Fd))
                if c.mlp_bias:
                    w["gate_b"] = self.take(m + "gate_proj.bias", (Fd,))
                    w["up_b"] = self.take(m + "up_proj.bias", (Fd,))
                    w["down_b"] = self.take(m + "down_proj.bias", (D,))
                self.skip(a + "rotary_emb.inv_freq")
            self.layers.append(w)
        if neox:
            self.lnf_w = self.take("gpt_neox.final_layer_norm.weight", (D,))
            self.lnf_b = self.take("gpt_neox.final_layer_norm.bias", (D,))
            head = "embed_out.weight"
        else:
            self.lnf_w = self.take("model.norm.weight", (D,))
            self.lnf_b = None
            head = "lm_head.weight"
        if c.tied:
            self.unembed = self.embed
            if head in raw:
                self.used.add(head)
                if not torch.equal(raw[head], self.embed):
                    print(f"warning: tie_word_embeddings=true: ignoring {head}, which differs from the embedding",
                          file=sys.stderr)
        else:
            self.unembed = self.take(head, (V, D))
        self.skip("model.rotary_emb.inv_freq", "gpt_neox.rotary_emb.inv_freq")
        unused = sorted(set(raw) - self.used)
        if unused:
            raise ValueError(f"unexpected tensors for {c.family} (config mismatch?): {unused[:8]}"
                             + (" ..." if len(unused) > 8 else ""))

    def take(self, name, shape):
        if name not in self.raw:
            raise KeyError(f"weights lack {name}")
        t = self.raw[name]
        if tuple(t.shape) != tuple(shape):
            raise ValueError(f"{name}: shape {tuple(t.shape)}, expected {tuple(shape)}")
        self.used.add(name)
        return t

    def skip(self, *names):
        for n in names:
            if n in self.raw:
                self.used.add(n)


def load_model(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = Config(json.load(f))
    return cfg, Weights(cfg, read_weights(folder))


# --------------------------------------------------------------------------
# Forward pass (float64)
# --------------------------------------------------------------------------

def _gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


ACTIVATIONS = {
    "silu": lambda x: x * torch.sigmoid(x),
    "swish": lambda x: x * torch.sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0))),
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
}


def norm(cfg, x, w, b, rec, name, eps=None):
    """RMSNorm (w*x̂ or Gemma's (1+w)*x̂) or LayerNorm. Records the scale and
    the output (after weight and bias)."""
    eps = cfg.eps if eps is None else eps
    kind = cfg.norm
    if kind == "ln":
        xc = x - x.mean(-1, keepdim=True)
        scale = (xc.pow(2).mean(-1, keepdim=True) + eps).sqrt()
        out = xc / scale * w + b
    else:
        scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
        out = x / scale * ((1.0 + w) if kind == "rms1p" else w)
    if rec is not None:
        rec[name + ".hook_scale"] = scale
        rec[name + ".hook_normalized"] = out
    return out


def head_norm(kind, x, w, eps):
    scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    return x / scale * ((1.0 + w) if kind == "rms1p" else w)


def rotate(x, inv_freq, rot):
    """Rotary (rotate_half convention) on the first rot dims of x [B,T,N,dh],
    positions 0..T-1."""
    T = x.shape[1]
    ang = torch.arange(T, dtype=DT)[:, None] * inv_freq[None, :]      # [T, rot/2]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[None, :, None, :]       # [1,T,1,rot]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[None, :, None, :]
    xr, xp = x[..., :rot], x[..., rot:]
    half = rot // 2
    rh = torch.cat([-xr[..., half:], xr[..., :half]], -1)
    return torch.cat([xr * cos + rh * sin, xp], -1)


def visible_mask(T, window):
    """[T,T] bool: query i may attend key j."""
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    m = j <= i
    if window is not None:
        m = m & (i - j < window)
    return m


def linear(x, w, b=None):
    y = x @ w.T
    return y + b if b is not None else y


def softcap(x, c):
    return c * torch.tanh(x / c)


def qkv_projections(cfg, w, h):
    """Returns q [B,T,H,dh], k [B,T,K,dh], v [B,T,K,dh] (with bias)."""
    B, T, _ = h.shape
    H, K, dh = cfg.n_heads, cfg.n_kv, cfg.d_head
    if cfg.family == "gpt_neox":
        y = linear(h, w["qkv_fused"], w["qkv_fused_b"]).view(B, T, H, 3 * dh)
        return y[..., :dh], y[..., dh:2 * dh], y[..., 2 * dh:]
    if cfg.family == "phi3":
        y = linear(h, w["qkv_cat"])
        q = y[..., :H * dh]
        k = y[..., H * dh:(H + K) * dh]
        v = y[..., (H + K) * dh:]
    else:
        q = linear(h, w["q"], w.get("q_b"))
        k = linear(h, w["k"], w.get("k_b"))
        v = linear(h, w["v"], w.get("v_b"))
    return q.reshape(B, T, H, dh), k.reshape(B, T, K, dh), v.reshape(B, T, K, dh)


def forward(cfg, W, tokens, resid_pre0=None):
    """tokens: LongTensor [B,T]. Returns {name: float64 tensor}. If resid_pre0
    is given it replaces the embedding as blocks.0.hook_resid_pre."""
    B, T = tokens.shape
    H, K, dh, D = cfg.n_heads, cfg.n_kv, cfg.d_head, cfg.d_model
    rep = H // K
    rec = {}
    embed = W.embed[tokens] * cfg.embed_scale
    rec["hook_embed"] = embed
    x = embed if resid_pre0 is None else resid_pre0
    for l in range(cfg.n_layers):
        w, spec, b = W.layers[l], cfg.layers[l], f"blocks.{l}."
        rec[b + "hook_resid_pre"] = x
        h = norm(cfg, x, w["ln1_w"], w.get("ln1_b"), rec, b + "ln1")
        q, k, v = qkv_projections(cfg, w, h)
        rec[b + "attn.hook_q"], rec[b + "attn.hook_k"], rec[b + "attn.hook_v"] = q, k, v
        if cfg.qk_norm:
            q = head_norm(cfg.qk_norm, q, w["q_norm"], cfg.eps)
            k = head_norm(cfg.qk_norm, k, w["k_norm"], cfg.eps)
        q = rotate(q, spec.inv_freq, spec.rot_dim)
        k = rotate(k, spec.inv_freq, spec.rot_dim)
        rec[b + "attn.hook_rot_q"], rec[b + "attn.hook_rot_k"] = q, k
        kq = k.repeat_interleave(rep, dim=2)       # query head h reads kv head h // rep
        vq = v.repeat_interleave(rep, dim=2)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, kq) * cfg.scale
        if cfg.attn_cap is not None:
            scores = softcap(scores, cfg.attn_cap)
        scores = scores.masked_fill(~visible_mask(T, spec.window), float("-inf"))
        rec[b + "attn.hook_attn_scores"] = scores
        pattern = torch.softmax(scores, dim=-1)
        rec[b + "attn.hook_pattern"] = pattern
        z = torch.einsum("bhqk,bkhd->bqhd", pattern, vq)
        rec[b + "attn.hook_z"] = z
        attn_out = linear(z.reshape(B, T, H * dh), w["o"], w.get("o_b"))
        if cfg.sandwich:
            attn_out = norm(cfg, attn_out, w["ln1_post_w"], None, rec, b + "ln1_post")
        rec[b + "hook_attn_out"] = attn_out
        if cfg.parallel:
            h2 = norm(cfg, x, w["ln2_w"], w.get("ln2_b"), rec, b + "ln2")
        else:
            mid = x + attn_out
            rec[b + "hook_resid_mid"] = mid
            h2 = norm(cfg, mid, w["ln2_w"], w.get("ln2_b"), rec, b + "ln2")
        act = ACTIVATIONS[cfg.act]
        if cfg.family == "gpt_neox":
            pre = linear(h2, w["in"], w["in_b"])
            rec[b + "mlp.hook_pre"] = pre
            post = act(pre)
            rec[b + "mlp.hook_post"] = post
            mlp_out = linear(post, w["out"], w["out_b"])
        else:
            if cfg.family == "phi3":
                gu = linear(h2, w["gate_up"])
                gate, up = gu[..., :cfg.d_ff], gu[..., cfg.d_ff:]
            else:
                gate = linear(h2, w["gate"], w.get("gate_b"))
                up = linear(h2, w["up"], w.get("up_b"))
            rec[b + "mlp.hook_pre"] = gate
            rec[b + "mlp.hook_pre_linear"] = up
            post = act(gate) * up
            rec[b + "mlp.hook_post"] = post
            mlp_out = linear(post, w["down"], w.get("down_b"))
        if cfg.sandwich:
            mlp_out = norm(cfg, mlp_out, w["ln2_post_w"], None, rec, b + "ln2_post")
        rec[b + "hook_mlp_out"] = mlp_out
        x = (x + attn_out + mlp_out) if cfg.parallel else (mid + mlp_out)
        rec[b + "hook_resid_post"] = x
    hf = norm(cfg, x, W.lnf_w, W.lnf_b, rec, "ln_final")
    logits = hf @ W.unembed.T
    if cfg.final_cap is not None:
        logits = softcap(logits, cfg.final_cap)
    rec["logits"] = logits
    return rec


def resolve_pos(pos, T):
    p = pos + T if pos < 0 else pos
    if not 0 <= p < T:
        raise ValueError(f"--grad position {pos} out of range for a prompt of length {T}")
    return p


def input_gradient(cfg, W, tokens, grad_spec):
    pos, tok = grad_spec
    B, T = tokens.shape
    p = resolve_pos(pos, T)
    if not 0 <= tok < cfg.vocab:
        raise ValueError(f"--grad token {tok} out of range")
    with torch.no_grad():
        leaf0 = W.embed[tokens] * cfg.embed_scale
    leaf = leaf0.clone().requires_grad_(True)
    rec = forward(cfg, W, tokens, resid_pre0=leaf)
    logp = torch.log_softmax(rec["logits"], dim=-1)[:, p, tok]
    (g,) = torch.autograd.grad(logp.sum(), leaf)   # batch rows are independent
    return g.detach()


def run_prompt_group(cfg, W, prompts, grad_spec):
    tokens = torch.tensor(prompts, dtype=torch.long)
    with torch.no_grad():
        out = {k: v.detach() for k, v in forward(cfg, W, tokens).items()}
    out["tokens"] = tokens.to(torch.int32)
    if grad_spec is not None:
        out["grad_resid_pre0"] = input_gradient(cfg, W, tokens, grad_spec)
    return out


# --------------------------------------------------------------------------
# Self checks (independent formulations)
# --------------------------------------------------------------------------

class Checker:
    def __init__(self, verbose=True):
        self.failures = 0
        self.count = 0
        self.verbose = verbose
        self.failed = []

    def _report(self, ok, msg):
        self.count += 1
        if not ok:
            self.failures += 1
            self.failed.append(msg)
        if self.verbose or not ok:
            print(f"{'ok  ' if ok else 'FAIL'} {msg}")

    def close(self, name, a, b, tol=1e-9):
        a = torch.as_tensor(a, dtype=DT)
        b = torch.as_tensor(b, dtype=DT)
        if a.shape != b.shape:
            self._report(False, f"{name}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
            return
        fin = torch.isfinite(a) & torch.isfinite(b)
        same_inf = torch.equal(torch.isfinite(a), torch.isfinite(b)) and torch.equal(a[~fin], b[~fin])
        err = (a[fin] - b[fin]).abs().max().item() if fin.any() else 0.0
        ref = max(1.0, b[fin].abs().max().item() if fin.any() else 1.0)
        ok = same_inf and err <= tol * ref
        self._report(ok, f"{name}: max abs err {err:.3e}" + ("" if same_inf else " (non-finite entries differ)"))

    def true(self, name, cond):
        self._report(bool(cond), name)


def independent_inv_freq(p, rot):
    """Per-frequency python loop (Meta's llama3 apply_scaling style)."""
    out = []
    for i in range(rot // 2):
        f = 1.0 / math.pow(p["theta"], (2.0 * i) / rot)
        kind = p["rope_type"]
        if kind == "linear":
            f = f / float(p["factor"])
        elif kind == "llama3":
            factor = float(p["factor"])
            old = float(p["original_max_position_embeddings"])
            lo, hi = float(p["low_freq_factor"]), float(p["high_freq_factor"])
            wl = 2 * math.pi / f
            if wl < old / hi:
                pass                              # high frequency: unchanged
            elif wl > old / lo:
                f = f / factor                    # low frequency: interpolated
            else:
                s = (old / wl - lo) / (hi - lo)
                f = (1 - s) * f / factor + s * f
        out.append(f)
    return torch.tensor(out, dtype=DT)


def complex_rotary(x, inv_freq, rot):
    """Rotary via complex multiplication on the half-split pairs (x[i], x[i+rot/2])."""
    T = x.shape[1]
    half = rot // 2
    pairs = torch.stack([x[..., :half], x[..., half:rot]], -1).contiguous()    # [..., half, 2]
    zc = torch.view_as_complex(pairs)
    ang = torch.arange(T, dtype=DT)[:, None] * inv_freq[None, :]
    rotc = torch.polar(torch.ones_like(ang), ang)[None, :, None, :]           # e^{i pos theta}
    r = torch.view_as_real(zc * rotc)
    return torch.cat([r[..., 0], r[..., 1], x[..., rot:]], -1)


def explicit_attention(q, k, v, scale, cap, window, heads, rep):
    """Python loops over (b, head, query, key): scores, pattern, z for the given heads."""
    B, T = q.shape[0], q.shape[1]
    dh = q.shape[-1]
    S = torch.full((B, len(heads), T, T), float("-inf"), dtype=DT)
    P = torch.zeros((B, len(heads), T, T), dtype=DT)
    Z = torch.zeros((B, T, len(heads), dh), dtype=DT)
    qn, kn, vn = q.numpy(), k.numpy(), v.numpy()
    for bi in range(B):
        for hi, h in enumerate(heads):
            kv = h // rep
            for i in range(T):
                row = {}
                for j in range(T):
                    if j > i or (window is not None and i - j >= window):
                        continue
                    s = 0.0
                    for d in range(dh):
                        s += float(qn[bi, i, h, d]) * float(kn[bi, j, kv, d])
                    s *= scale
                    if cap is not None:
                        s = cap * math.tanh(s / cap)
                    row[j] = s
                m = max(row.values())
                e = {j: math.exp(s - m) for j, s in row.items()}
                tot = math.fsum(e.values())
                for j, s in row.items():
                    S[bi, hi, i, j] = s
                    P[bi, hi, i, j] = e[j] / tot
                for d in range(dh):
                    Z[bi, i, hi, d] = math.fsum(e[j] / tot * float(vn[bi, j, kv, d]) for j in row)
    return S, P, Z


def split_neox_rows(Wf, H, dh):
    """Independent split of the fused NeoX rows: row index h*3*dh + j*dh + d."""
    idx = {j: [h * 3 * dh + j * dh + d for h in range(H) for d in range(dh)] for j in range(3)}
    return Wf[idx[0]], Wf[idx[1]], Wf[idx[2]]


def ref_norm(kind, x, w, b, eps):
    """Independent norm formulations (F.layer_norm; rsqrt of the vector norm)."""
    if kind == "ln":
        return F.layer_norm(x, (x.shape[-1],), w, b, eps)
    rms = torch.linalg.vector_norm(x, dim=-1, keepdim=True) / math.sqrt(x.shape[-1])
    y = x * torch.rsqrt(rms * rms + eps)
    return y * (w + 1.0) if kind == "rms1p" else y * w


def ref_act(name, x):
    if name in ("silu", "swish"):
        return F.silu(x)
    if name == "gelu":
        return F.gelu(x)
    return F.gelu(x, approximate="tanh")


def selfcheck(cfg, W, tokens, rec, ck, loop_budget=400_000):
    B, T = tokens.shape
    H, K, dh, D = cfg.n_heads, cfg.n_kv, cfg.d_head, cfg.d_model
    rep = H // K
    ck.true("no NaN/+inf in any recorded tensor",
            all(not torch.isnan(t).any() and not torch.isposinf(t).any() for t in rec.values()))
    ck.close("hook_embed = E[tokens] * embed_scale", rec["hook_embed"],
             F.embedding(tokens, W.embed) * (math.sqrt(D) if cfg.family in GEMMAS else 1.0))
    ck.close("blocks.0.hook_resid_pre = hook_embed", rec["blocks.0.hook_resid_pre"], rec["hook_embed"], 0)
    # explicit loops for a subset of heads, within the budget
    per_head = B * T * T * dh * cfg.n_layers
    n_loop_heads = max(1, min(H, loop_budget // max(1, per_head)))
    loop_heads = sorted(set([0, H - 1] + list(range(n_loop_heads))))[:max(n_loop_heads, min(2, H))]
    for l in range(cfg.n_layers):
        w, spec, b = W.layers[l], cfg.layers[l], f"blocks.{l}."
        x = rec[b + "hook_resid_pre"]
        if l > 0:
            ck.close(f"L{l} resid_pre = previous resid_post", x, rec[f"blocks.{l-1}.hook_resid_post"], 0)
        # norms
        ln1 = ref_norm(cfg.norm, x, w["ln1_w"], w.get("ln1_b"), cfg.eps)
        ck.close(f"L{l} ln1.hook_normalized vs independent norm", rec[b + "ln1.hook_normalized"], ln1)
        sc = (torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + cfg.eps) if cfg.norm == "ln"
              else torch.sqrt((x * x).sum(-1, keepdim=True) / D + cfg.eps))
        ck.close(f"L{l} ln1.hook_scale", rec[b + "ln1.hook_scale"], sc)
        ck.true(f"L{l} ln1.hook_scale shape [B,T,1]", tuple(rec[b + "ln1.hook_scale"].shape) == (B, T, 1))
        # projections via F.linear with independently split weights
        if cfg.family == "gpt_neox":
            Wq, Wk, Wv = split_neox_rows(w["qkv_fused"], H, dh)
            bq, bk, bv = (split_neox_rows(w["qkv_fused_b"], H, dh) if w["qkv_fused_b"] is not None
                          else (None, None, None))
        elif cfg.family == "phi3":
            Wq, Wk, Wv = torch.split(w["qkv_cat"], [H * dh, K * dh, K * dh], 0)
            bq = bk = bv = None
        else:
            Wq, Wk, Wv, bq, bk, bv = w["q"], w["k"], w["v"], w.get("q_b"), w.get("k_b"), w.get("v_b")
        q_ref = F.linear(ln1, Wq, bq).unflatten(-1, (H, dh))
        k_ref = F.linear(ln1, Wk, bk).unflatten(-1, (K, dh))
        v_ref = F.linear(ln1, Wv, bv).unflatten(-1, (K, dh))
        ck.close(f"L{l} hook_q vs F.linear", rec[b + "attn.hook_q"], q_ref)
        ck.close(f"L{l} hook_k vs F.linear", rec[b + "attn.hook_k"], k_ref)
        ck.close(f"L{l} hook_v vs F.linear", rec[b + "attn.hook_v"], v_ref)
        # q/k norm + rotary (complex multiplication, loop-computed frequencies)
        if cfg.qk_norm:
            q_n = ref_norm(cfg.qk_norm, q_ref, w["q_norm"], None, cfg.eps)
            k_n = ref_norm(cfg.qk_norm, k_ref, w["k_norm"], None, cfg.eps)
        else:
            q_n, k_n = q_ref, k_ref
        inv = independent_inv_freq(spec.rope_desc, spec.rot_dim)
        ck.close(f"L{l} inv_freq ({spec.rope_desc['rope_type']}, theta {spec.rope_desc['theta']:g}, "
                 f"rot {spec.rot_dim}) vs per-frequency loop", spec.inv_freq, inv, 1e-12)
        ck.close(f"L{l} hook_rot_q vs complex rotary", rec[b + "attn.hook_rot_q"], complex_rotary(q_n, inv, spec.rot_dim))
        ck.close(f"L{l} hook_rot_k vs complex rotary", rec[b + "attn.hook_rot_k"], complex_rotary(k_n, inv, spec.rot_dim))
        if spec.rot_dim < dh:
            ck.close(f"L{l} non-rotary dims pass through", rec[b + "attn.hook_rot_q"][..., spec.rot_dim:],
                     q_n[..., spec.rot_dim:])
        # attention: explicit loops
        rq, rk, v = rec[b + "attn.hook_rot_q"], rec[b + "attn.hook_rot_k"], rec[b + "attn.hook_v"]
        S, P, Z = explicit_attention(rq, rk, v, cfg.scale, cfg.attn_cap, spec.window, loop_heads, rep)
        hs = f"heads {loop_heads}" if len(loop_heads) < H else "all heads"
        ck.close(f"L{l} attn_scores vs explicit loops ({hs})", rec[b + "attn.hook_attn_scores"][:, loop_heads], S)
        ck.close(f"L{l} pattern vs explicit loops ({hs})", rec[b + "attn.hook_pattern"][:, loop_heads], P)
        ck.close(f"L{l} hook_z vs explicit loops ({hs})", rec[b + "attn.hook_z"][:, :, loop_heads], Z)
        pat = rec[b + "attn.hook_pattern"]
        scs = rec[b + "attn.hook_attn_scores"]
        vis = visible_mask(T, spec.window)
        ck.close(f"L{l} pattern rows sum to 1", pat.sum(-1), torch.ones(B, H, T, dtype=DT))
        ck.true(f"L{l} masked pattern == 0 and masked scores == -inf",
                bool((pat[..., ~vis] == 0).all()) and bool(torch.isneginf(scs[..., ~vis]).all())
                and bool(torch.isfinite(scs[..., vis]).all()))
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        if spec.window is not None and T > spec.window:
            ck.true(f"L{l} sliding window {spec.window} masks {int((causal & ~vis).sum())} past keys",
                    bool(torch.isneginf(scs[..., causal & ~vis]).all()) and int((causal & ~vis).sum()) > 0)
        if cfg.attn_cap is not None:
            ck.true(f"L{l} |scores| < attn cap {cfg.attn_cap}", bool((scs[..., vis].abs() < cfg.attn_cap).all()))
        # attention output
        ao = F.linear(rec[b + "attn.hook_z"].flatten(-2), w["o"], w.get("o_b"))
        if cfg.sandwich:
            ck.close(f"L{l} ln1_post.hook_scale", rec[b + "ln1_post.hook_scale"],
                     torch.sqrt((ao * ao).mean(-1, keepdim=True) + cfg.eps))
            ao = ref_norm(cfg.norm, ao, w["ln1_post_w"], None, cfg.eps)
            ck.close(f"L{l} ln1_post.hook_normalized = hook_attn_out", rec[b + "ln1_post.hook_normalized"],
                     rec[b + "hook_attn_out"], 0)
        ck.close(f"L{l} hook_attn_out vs F.linear(z)" + (" + post norm" if cfg.sandwich else ""),
                 rec[b + "hook_attn_out"], ao)
        if cfg.parallel:
            ck.true(f"L{l} no hook_resid_mid (parallel residual)", b + "hook_resid_mid" not in rec)
            mlp_in = x
        else:
            ck.close(f"L{l} resid_mid = resid_pre + attn_out", rec[b + "hook_resid_mid"], x + rec[b + "hook_attn_out"], 0)
            mlp_in = rec[b + "hook_resid_mid"]
        ln2 = ref_norm(cfg.norm, mlp_in, w["ln2_w"], w.get("ln2_b"), cfg.eps)
        ck.close(f"L{l} ln2.hook_normalized vs independent norm", rec[b + "ln2.hook_normalized"], ln2)
        if cfg.family == "gpt_neox":
            pre = F.linear(ln2, w["in"], w["in_b"])
            ck.close(f"L{l} mlp.hook_pre vs F.linear", rec[b + "mlp.hook_pre"], pre)
            post = ref_act(cfg.act, pre)
            ck.close(f"L{l} mlp.hook_post vs torch activation", rec[b + "mlp.hook_post"], post)
            mo = F.linear(post, w["out"], w["out_b"])
        else:
            if cfg.family == "phi3":
                Wg, Wu = torch.chunk(w["gate_up"], 2, 0)
            else:
                Wg, Wu = w["gate"], w["up"]
            gate = F.linear(ln2, Wg, w.get("gate_b"))
            up = F.linear(ln2, Wu, w.get("up_b"))
            ck.close(f"L{l} mlp.hook_pre (gate) vs F.linear", rec[b + "mlp.hook_pre"], gate)
            ck.close(f"L{l} mlp.hook_pre_linear (up) vs F.linear", rec[b + "mlp.hook_pre_linear"], up)
            post = ref_act(cfg.act, gate) * up
            ck.close(f"L{l} mlp.hook_post = act(gate)*up vs torch activation", rec[b + "mlp.hook_post"], post)
            mo = F.linear(post, w["down"], w.get("down_b"))
        if cfg.sandwich:
            mo = ref_norm(cfg.norm, mo, w["ln2_post_w"], None, cfg.eps)
            ck.close(f"L{l} ln2_post.hook_normalized = hook_mlp_out", rec[b + "ln2_post.hook_normalized"],
                     rec[b + "hook_mlp_out"], 0)
        ck.close(f"L{l} hook_mlp_out vs F.linear" + (" + post norm" if cfg.sandwich else ""), rec[b + "hook_mlp_out"], mo)
        want = (x + rec[b + "hook_attn_out"] + rec[b + "hook_mlp_out"]) if cfg.parallel \
            else rec[b + "hook_resid_mid"] + rec[b + "hook_mlp_out"]
        ck.close(f"L{l} resid_post = " + ("resid_pre + attn_out + mlp_out" if cfg.parallel else "resid_mid + mlp_out"),
                 rec[b + "hook_resid_post"], want, 1e-15)
    xf = rec[f"blocks.{cfg.n_layers - 1}.hook_resid_post"]
    lnf = ref_norm(cfg.norm, xf, W.lnf_w, W.lnf_b, cfg.eps)
    ck.close("ln_final.hook_normalized vs independent norm", rec["ln_final.hook_normalized"], lnf)
    lg = F.linear(lnf, W.unembed)
    if cfg.final_cap is not None:
        lg = cfg.final_cap * torch.tanh(lg / cfg.final_cap)
        ck.true(f"|logits| < final cap {cfg.final_cap}", bool((rec["logits"].abs() < cfg.final_cap).all()))
    ck.close("logits vs F.linear(ln_final)" + (" + soft-cap" if cfg.final_cap is not None else ""), rec["logits"], lg)


def check_gradient(cfg, W, tokens, grad_spec, grad, ck, n_coords=6):
    pos, tok = grad_spec
    B, T = tokens.shape
    p = resolve_pos(pos, T)
    with torch.no_grad():
        base = W.embed[tokens] * cfg.embed_scale

        def f(x):
            return torch.log_softmax(forward(cfg, W, tokens, resid_pre0=x)["logits"], -1)[:, p, tok]

        gen = torch.Generator().manual_seed(0)
        errs, ok = [], True
        coords = [(bi, int(torch.randint(0, p + 1, (1,), generator=gen)),
                   int(torch.randint(0, cfg.d_model, (1,), generator=gen)))
                  for bi in range(B) for _ in range(n_coords)]
        scale = max(1.0, base.abs().max().item())
        for (bi, t, d) in coords:
            g = grad[bi, t, d].item()

            def cd(eps):
                xp = base.clone(); xp[bi, t, d] += eps
                xm = base.clone(); xm[bi, t, d] -= eps
                return (f(xp)[bi] - f(xm)[bi]).item() / (2 * eps)
            best = float("inf")
            for eps in (1e-3, 1e-4, 1e-5, 1e-6):
                d1, d2 = cd(eps * scale), cd(eps * scale / 2)
                for fd in (d1, d2, (4 * d2 - d1) / 3):
                    best = min(best, abs(fd - g) / max(1.0, abs(g)))
            errs.append(best)
            ok = ok and best <= 1e-6
        ck.true(f"grad_resid_pre0 vs central finite differences ({len(coords)} coords, max rel err {max(errs):.2e})", ok)
        ck.true("grad_resid_pre0 is zero after the position", bool((grad[:, p + 1:] == 0).all()))


# --------------------------------------------------------------------------
# Self test (--selftest): tiny random models of every family
# --------------------------------------------------------------------------

def expected_names(cfg, T, B=1):
    """The tensor names and shapes this reference must write for one prompt group."""
    H, K, dh, D, Fd, V = cfg.n_heads, cfg.n_kv, cfg.d_head, cfg.d_model, cfg.d_ff, cfg.vocab
    e = {"logits": (B, T, V), "hook_embed": (B, T, D), "tokens": (B, T),
         "ln_final.hook_scale": (B, T, 1), "ln_final.hook_normalized": (B, T, D)}
    for l in range(cfg.n_layers):
        b = f"blocks.{l}."
        e.update({b + "hook_resid_pre": (B, T, D), b + "ln1.hook_scale": (B, T, 1),
                  b + "ln1.hook_normalized": (B, T, D), b + "attn.hook_q": (B, T, H, dh),
                  b + "attn.hook_k": (B, T, K, dh), b + "attn.hook_v": (B, T, K, dh),
                  b + "attn.hook_rot_q": (B, T, H, dh), b + "attn.hook_rot_k": (B, T, K, dh),
                  b + "attn.hook_attn_scores": (B, H, T, T), b + "attn.hook_pattern": (B, H, T, T),
                  b + "attn.hook_z": (B, T, H, dh), b + "hook_attn_out": (B, T, D),
                  b + "ln2.hook_scale": (B, T, 1), b + "ln2.hook_normalized": (B, T, D),
                  b + "mlp.hook_pre": (B, T, Fd), b + "mlp.hook_post": (B, T, Fd),
                  b + "hook_mlp_out": (B, T, D), b + "hook_resid_post": (B, T, D)})
        if not cfg.parallel:
            e[b + "hook_resid_mid"] = (B, T, D)
        if cfg.family != "gpt_neox":
            e[b + "mlp.hook_pre_linear"] = (B, T, Fd)
        if cfg.sandwich:
            for n in ("ln1_post", "ln2_post"):
                e[b + n + ".hook_scale"] = (B, T, 1)
                e[b + n + ".hook_normalized"] = (B, T, D)
    return e


def _quiet_run(folder, out, prompts, grad, ck):
    """run() with --selfcheck, printing only failures."""
    import contextlib
    import io
    inner = Checker(verbose=False)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        res = run(folder, out, prompts, grad, False, True, inner)
    ck.true(f"  selfcheck {os.path.basename(folder)}: {inner.count - inner.failures}/{inner.count} passed",
            inner.failures == 0)
    for m in inner.failed:
        print("      FAIL " + m)
    return res


def _records(folder, tokens):
    cfg, W = load_model(folder)
    with torch.no_grad():
        return cfg, forward(cfg, W, torch.tensor([tokens], dtype=torch.long))


def _same_records(ck, name, ra, rb, tol=1e-12, keys=None):
    keys = sorted(set(ra) & set(rb)) if keys is None else keys
    worst, where = 0.0, ""
    for k in keys:
        a, b = ra[k], rb[k]
        fin = torch.isfinite(b)
        if a.shape != b.shape or not torch.equal(torch.isfinite(a), fin):
            worst, where = float("inf"), k
            break
        if fin.any():
            e = ((a[fin] - b[fin]).abs().max() / max(1.0, b[fin].abs().max().item())).item()
            if e > worst:
                worst, where = e, k
    ck.true(f"  {name}: {len(keys)} tensors agree (max rel err {worst:.1e}{' at ' + where if where else ''})",
            worst <= tol and len(keys) > 0)


def selftest():
    from make_family_model import build, write_model, fuse_neox
    torch.set_grad_enabled(True)
    ck = Checker()
    tmp = tempfile.mkdtemp(prefix="families_selftest_")
    P10 = [3, 14, 15, 9, 2, 6, 5, 35, 8, 9]
    P7 = [1, 2, 3, 4, 5, 6, 7]

    def make(name, mt, **kw):
        cfg, t = build(mt, **kw)
        folder = os.path.join(tmp, name)
        write_model(folder, cfg, t)
        return folder, cfg, t

    def put(name, cfg, t, **kw):
        folder = os.path.join(tmp, name)
        write_model(folder, cfg, t, **kw)
        return folder

    print("== 1. every family, selfcheck + --grad on two prompts of different lengths ==")
    variants = [
        ("llama_llama3", "llama", {}),
        ("llama_linear_bias_v5", "llama", dict(rope="linear", bias=True, layout="v5")),
        ("llama_mha_default", "llama", dict(kv_heads=4, rope="default", tied=True)),
        ("mistral_w4", "mistral", {}),
        ("mistral_nowindow", "mistral", dict(window=None)),
        ("qwen2", "qwen2", {}),
        ("qwen3", "qwen3", {}),
        ("qwen3_bias_mqa", "qwen3", dict(bias=True, kv_heads=1)),
        ("gemma", "gemma", {}),
        ("gemma_untied", "gemma", dict(tied=False)),
        ("gemma2", "gemma2", {}),
        ("gemma2_layer_types", "gemma2", dict(layer_types=True, layers=3)),
        ("gemma3_p2", "gemma3_text", {}),
        ("gemma3_p2_v5", "gemma3_text", dict(layout="v5")),
        ("gemma3_7L_default_pattern", "gemma3_text", dict(layers=7, pattern=6, layer_types=False)),
        ("gemma3_layer_types", "gemma3_text", dict(layer_types=True, layers=4, pattern=2)),
        ("neox_parallel", "gpt_neox", {}),
        ("neox_sequential", "gpt_neox", dict(sequential=True, partial=0.5)),
        ("neox_v5", "gpt_neox", dict(layout="v5")),
        ("phi3_w5", "phi3", {}),
        ("phi3_partial", "phi3", dict(partial=0.5, window=None)),
    ]
    folders = {}
    for name, mt, kw in variants:
        folder, _, _ = make(name, mt, **kw)
        folders[name] = folder
        out = os.path.join(tmp, name + ".safetensors")
        cfgm, _, results = _quiet_run(folder, out, [P10, P7], (-1, 5), ck)
        back, meta = read_safetensors(out)
        want = {}
        for i, p in enumerate((P10, P7)):
            for k, shp in expected_names(cfgm, len(p)).items():
                want[f"p{i}.{k}"] = shp
            want[f"p{i}.grad_resid_pre0"] = (1, len(p), cfgm.d_model)
        got = {k: tuple(v.shape) for k, v in back.items()}
        ck.true(f"  {name}: tensor names and shapes exactly as specified ({len(want)})", got == want)
        ck.true(f"  {name}: tokens are int32, everything else float32",
                all((v.dtype == np.int32) == k.endswith("tokens") and v.dtype in (np.int32, np.float32)
                    for k, v in back.items()))
        ck.true(f"  {name}: no NaN", all(not np.isnan(v).any() for v in back.values()))
        sl = [l for l, s in enumerate(cfgm.layers) if s.window is not None]
        if sl:
            ck.true(f"  {name}: sliding layers {sl} (window {cfgm.layers[sl[0]].window}), "
                    f"full layers {[l for l in range(cfgm.n_layers) if l not in sl]}", True)

    print("== 2. layer kinds ==")
    c = Config(build("gemma3_text", layers=7, pattern=6)[0])
    ck.true("gemma3 pattern 6, 7 layers: sliding = [T,T,T,T,T,F,T]",
            [s.sliding for s in c.layers] == [True] * 5 + [False, True])
    ck.true("gemma3 sliding layers use rope_local_base_freq, no scaling; full layers rope_theta + linear 8",
            c.layers[0].rope_desc["theta"] == 10000.0 and c.layers[0].rope_desc["rope_type"] == "default"
            and c.layers[5].rope_desc["theta"] == 1e6 and c.layers[5].rope_desc["rope_type"] == "linear")
    c = Config(build("gemma2", layers=4)[0])
    ck.true("gemma2 without layer_types: layer l sliding iff l % 2 == 0",
            [s.sliding for s in c.layers] == [True, False, True, False])
    d = build("gemma2", layers=4)[0]
    d["layer_types"] = ["full_attention", "sliding_attention", "full_attention", "full_attention"]
    ck.true("gemma2 layer_types respected", [s.window is not None for s in Config(d).layers] == [False, True, False, False])
    d = build("gemma2")[0]
    del d["attn_logit_softcapping"], d["final_logit_softcapping"], d["query_pre_attn_scalar"]
    c = Config(d)
    ck.true("gemma2 absent caps/scalar take HF defaults (50, 30, 256^-0.5)",
            c.attn_cap == 50.0 and c.final_cap == 30.0 and c.scale == 256 ** -0.5)

    print("== 3. cross-family equivalences (same weights, different layouts) ==")
    # 3a: config layouts v4 vs v5 give identical results
    for mt, kw in (("llama", {}), ("gemma3_text", {}), ("gpt_neox", {}), ("phi3", dict(partial=0.5))):
        fa = put(f"lay4_{mt}", *build(mt, layout="v4", **kw))
        fb = put(f"lay5_{mt}", *build(mt, layout="v5", **kw))
        _same_records(ck, f"{mt}: v4 rope_theta/rope_scaling == v5 rope_parameters", _records(fa, P10)[1],
                      _records(fb, P10)[1], 0)
    # 3b: phi3 (fused qkv / gate_up) == mistral with the split weights
    pc, pt = build("phi3", window=4)
    mc = dict(pc, model_type="mistral", architectures=["MistralForCausalLM"])
    mt_ = {}
    H, K = pc["num_attention_heads"], pc["num_key_value_heads"]
    dh = pc["hidden_size"] // H
    for k, v in pt.items():
        if k.endswith("qkv_proj.weight"):
            p = k[: -len("qkv_proj.weight")]
            mt_[p + "q_proj.weight"] = v[: H * dh]
            mt_[p + "k_proj.weight"] = v[H * dh:(H + K) * dh]
            mt_[p + "v_proj.weight"] = v[(H + K) * dh:]
        elif k.endswith("gate_up_proj.weight"):
            p = k[: -len("gate_up_proj.weight")]
            half = v.shape[0] // 2
            mt_[p + "gate_proj.weight"], mt_[p + "up_proj.weight"] = v[:half], v[half:]
        else:
            mt_[k] = v
    _same_records(ck, "phi3 fused == mistral split (window 4)", _records(put("phi3_eq", pc, pt), P10)[1],
                  _records(put("mistral_eq", mc, mt_), P10)[1], 0)
    # 3c: mistral with a window >= T == llama; window < T differs only from position W on
    mcfg, mts = build("mistral", window=4, rope="default")
    lcfg = dict(mcfg, model_type="llama", architectures=["LlamaForCausalLM"])
    del lcfg["sliding_window"]
    _, r_l = _records(put("llama_eq", lcfg, mts), P10)
    _, r_wbig = _records(put("mistral_w10", dict(mcfg, sliding_window=10), mts), P10)
    _, r_w4 = _records(put("mistral_w4_eq", mcfg, mts), P10)
    _same_records(ck, "mistral window 10 (= T) == llama", r_wbig, r_l, 0)
    ck.true("mistral window 4: logits at positions 0..3 equal llama's, at 4..9 they differ",
            torch.equal(r_w4["logits"][:, :4], r_l["logits"][:, :4])
            and bool(((r_w4["logits"][0, 4:] - r_l["logits"][0, 4:]).abs().amax(-1) > 1e-6).all()))
    _, r_w9 = _records(put("mistral_w9", dict(mcfg, sliding_window=9), mts), P10)
    ck.true("mistral window 9: only position 9 differs from llama (key 0 dropped: i-j < W)",
            torch.equal(r_w9["logits"][:, :9], r_l["logits"][:, :9])
            and (r_w9["logits"][0, 9] - r_l["logits"][0, 9]).abs().max().item() > 1e-6
            and r_w9["blocks.0.attn.hook_pattern"][0, :, 9, 0].abs().max().item() == 0.0)
    # 3d: qwen2 == llama with attention_bias and a zero o_proj bias
    qc, qt = build("qwen2")
    lc = dict(qc, model_type="llama", architectures=["LlamaForCausalLM"], attention_bias=True, mlp_bias=False)
    for key in ("use_sliding_window", "sliding_window"):
        lc.pop(key, None)
    lt = dict(qt)
    for l in range(qc["num_hidden_layers"]):
        lt[f"model.layers.{l}.self_attn.o_proj.bias"] = np.zeros(qc["hidden_size"], np.float32)
    _same_records(ck, "qwen2 (qkv bias) == llama (attention_bias, o bias = 0)",
                  _records(put("qwen2_eq", qc, qt), P10)[1], _records(put("llama_q_eq", lc, lt), P10)[1], 0)
    # 3e: gemma (untied) == llama with embed*sqrt(D), norm weights 1+w, gelu_pytorch_tanh
    gc, gt = build("gemma", tied=False)
    D = gc["hidden_size"]
    lc = {k: v for k, v in gc.items() if k not in ("hidden_activation",)}
    lc.update(model_type="llama", architectures=["LlamaForCausalLM"], hidden_act="gelu_pytorch_tanh",
              attention_bias=False, mlp_bias=False)
    lt = {}
    for k, v in gt.items():
        lt[k] = (1.0 + v.astype(np.float64)).astype(np.float32) if k.endswith("norm.weight") else v
    fl = put("llama_g_eq", lc, lt)
    cfg_l, W_l = load_model(fl)
    W_l.embed = W_l.embed * math.sqrt(D)          # embedding scale folded into the input only
    cfg_g, W_g = load_model(put("gemma_eq", gc, gt))
    # (1+w) in float32 storage is inexact: compare against a gemma whose w was read the same way
    for wl_, wg_ in zip(W_l.layers, W_g.layers):
        for k in ("ln1_w", "ln2_w"):
            wg_[k] = wl_[k] - 1.0
    W_g.lnf_w = W_l.lnf_w - 1.0
    tk = torch.tensor([P10])
    with torch.no_grad():
        rg, rl = forward(cfg_g, W_g, tk), forward(cfg_l, W_l, tk)
    _same_records(ck, "gemma == llama(embed*sqrt(D), norm 1+w, gelu tanh)", rg, rl, 1e-13,
                  keys=[k for k in rg if k != "hook_embed"])
    # 3f: NeoX fused layout built from separate q/k/v == direct computation with the separate matrices
    nc, nt = build("gpt_neox", partial=0.5)
    rng = np.random.default_rng(7)
    Hn = nc["num_attention_heads"]
    dhn = nc["hidden_size"] // Hn
    sep = {}
    for l in range(nc["num_hidden_layers"]):
        p = f"gpt_neox.layers.{l}.attention."
        Ws = [(rng.standard_normal((Hn * dhn, nc["hidden_size"])) * 0.2).astype(np.float32) for _ in range(3)]
        bs = [(rng.standard_normal(Hn * dhn) * 0.02).astype(np.float32) for _ in range(3)]
        sep[l] = (Ws, bs)
        nt[p + "query_key_value.weight"] = fuse_neox(*Ws, Hn, dhn)
        nt[p + "query_key_value.bias"] = fuse_neox(*bs, Hn, dhn)
    cfg_n, rn = _records(put("neox_sep", nc, nt), P10)
    Wn = load_model(os.path.join(tmp, "neox_sep"))[1]
    x = torch.from_numpy(nt["gpt_neox.embed_in.weight"].astype(np.float64))[torch.tensor(P10)][None]
    T = len(P10)
    rot = int(dhn * 0.5)
    inv = torch.tensor([1.0 / 10000.0 ** (2 * i / rot) for i in range(rot // 2)], dtype=DT)
    mask = torch.full((T, T), float("-inf"), dtype=DT).triu(1)
    for l in range(nc["num_hidden_layers"]):
        w = Wn.layers[l]
        (Wq, Wk, Wv), (bq, bk, bv) = [[torch.from_numpy(a.astype(np.float64)) for a in g] for g in sep[l]]
        h = F.layer_norm(x, (x.shape[-1],), w["ln1_w"], w["ln1_b"], 1e-5)
        q = F.linear(h, Wq, bq).view(1, T, Hn, dhn)
        k = F.linear(h, Wk, bk).view(1, T, Hn, dhn)
        vv = F.linear(h, Wv, bv).view(1, T, Hn, dhn)
        ck.close(f"  neox L{l} hook_q/k/v from fused == separate matrices",
                 torch.cat([rn[f"blocks.{l}.attn.hook_{n}"] for n in "qkv"]), torch.cat([q, k, vv]))
        q, k = complex_rotary(q, inv, rot), complex_rotary(k, inv, rot)
        att = torch.softmax(torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dhn) + mask, -1)
        z = torch.einsum("bhqk,bkhd->bqhd", att, vv).reshape(1, T, -1)
        a_out = F.linear(z, w["o"], w["o_b"])
        m_out = F.linear(F.gelu(F.linear(F.layer_norm(x, (x.shape[-1],), w["ln2_w"], w["ln2_b"], 1e-5),
                                          w["in"], w["in_b"])), w["out"], w["out_b"])
        x = x + a_out + m_out
        ck.close(f"  neox L{l} resid_post == direct parallel-residual computation", rn[f"blocks.{l}.hook_resid_post"], x)
    lg = F.linear(F.layer_norm(x, (x.shape[-1],), Wn.lnf_w, Wn.lnf_b, 1e-5), Wn.unembed)
    ck.close("  neox logits == direct computation", rn["logits"], lg)
    # 3g: gemma2 sliding layer vs a window >= T: equal before position W only
    g2c, g2t = build("gemma2", window=4)
    _, ra = _records(put("g2_w4", g2c, g2t), P10)
    _, rb = _records(put("g2_w10", dict(g2c, sliding_window=10), g2t), P10)
    ck.true("gemma2 window 4: layer-0 pattern differs from window 10 exactly where i-j >= 4",
            torch.equal(ra["blocks.0.attn.hook_pattern"][..., :4, :], rb["blocks.0.attn.hook_pattern"][..., :4, :])
            and bool((ra["blocks.0.attn.hook_pattern"][0, :, 4:, :] - rb["blocks.0.attn.hook_pattern"][0, :, 4:, :])
                     .abs().amax(-1).gt(0).all())
            and torch.equal(ra["blocks.1.attn.hook_attn_scores"][..., :4, :], rb["blocks.1.attn.hook_attn_scores"][..., :4, :]))
    # 3h: llama3 scaling with factor 1 == default rope
    p = {"rope_type": "llama3", "theta": 500000.0, "factor": 1.0, "low_freq_factor": 1.0,
         "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    ck.close("llama3 rope with factor 1 == default rope", rope_inv_freq(p, 16),
             rope_inv_freq({"rope_type": "default", "theta": 500000.0}, 16), 1e-15)
    p["factor"] = 8.0
    inv8, inv1 = rope_inv_freq(p, 16), rope_inv_freq({"rope_type": "default", "theta": 500000.0}, 16)
    wl = 2 * math.pi / inv1
    ck.true("llama3 rope (factor 8, orig 64): high freqs kept, low freqs / 8, medium blended",
            bool(torch.equal(inv8[wl < 16], inv1[wl < 16])) and bool(torch.allclose(inv8[wl > 64], inv1[wl > 64] / 8))
            and bool(((inv8 < inv1) & (inv8 > inv1 / 8))[(wl >= 16) & (wl <= 64)].all())
            and int(((wl >= 16) & (wl <= 64)).sum()) > 0)
    # 3i: rotary depends on relative position only
    gen = torch.Generator().manual_seed(3)
    qv, kv = torch.randn(16, generator=gen, dtype=DT), torch.randn(16, generator=gen, dtype=DT)
    invr = rope_inv_freq({"rope_type": "default", "theta": 100.0}, 16)
    rq = rotate(qv.expand(1, 12, 1, 16), invr, 16)[0, :, 0]
    rk = rotate(kv.expand(1, 12, 1, 16), invr, 16)[0, :, 0]
    dots = rq @ rk.T
    ck.true("rotary: q_i . k_j depends only on i - j",
            all(torch.allclose(torch.diagonal(dots, o), torch.diagonal(dots, o)[0].expand(12 - abs(o)), atol=1e-12)
                for o in range(-11, 12)))
    xr = torch.randn(2, 12, 3, 16, generator=gen, dtype=DT)
    inv12 = rope_inv_freq({"rope_type": "default", "theta": 100.0}, 12)
    ck.close("rotary: rotate_half == complex multiplication (random input, partial 12 of 16 dims)",
             rotate(xr, inv12, 12), complex_rotary(xr, inv12, 12))

    print("== 4. weight formats ==")
    lc_, lt_ = build("llama", seed=5)
    rounded = {k: torch.from_numpy(v).to(torch.bfloat16).to(torch.float32).numpy() for k, v in lt_.items()}
    _, r32 = _records(put("llama_bf16ref", lc_, rounded), P7)
    _, rbf = _records(put("llama_bf16_sharded", lc_, lt_, dtype="BF16", shards=3), P7)
    _same_records(ck, "BF16 sharded (index.json, 3 shards) == F32 of the bf16-rounded weights", rbf, r32, 0)
    rounded16 = {k: v.astype(np.float16).astype(np.float32) for k, v in lt_.items()}
    _, r16 = _records(put("llama_f16", lc_, lt_, dtype="F16"), P7)
    _same_records(ck, "F16 == F32 of the f16-rounded weights", r16,
                  _records(put("llama_f16ref", lc_, rounded16), P7)[1], 0)
    # batch of equal-length prompts == separate runs
    cfg_b, W_b = load_model(folders["gemma3_p2"])
    with torch.no_grad():
        rb2 = forward(cfg_b, W_b, torch.tensor([P7, P10[:7]]))
        r0 = forward(cfg_b, W_b, torch.tensor([P7]))
    _same_records(ck, "equal-length batch row 0 == single-prompt run", {k: v[:1] for k, v in rb2.items()}, r0, 1e-13)

    print("== 5. errors for unsupported configurations ==")

    def raises(name, exc, fn):
        try:
            fn()
        except exc as e:
            ck.true(f"{name} -> {exc.__name__}: {str(e)[:70]}", True)
            return
        except Exception as e:  # noqa: BLE001
            ck.true(f"{name} -> expected {exc.__name__}, got {type(e).__name__}: {e}", False)
            return
        ck.true(f"{name} -> expected {exc.__name__}, nothing raised", False)

    for rt in ("yarn", "dynamic", "longrope"):
        d = build("llama")[0]
        d["rope_scaling"] = {"rope_type": rt, "factor": 2.0}
        raises(f"rope_scaling {rt}", NotImplementedError, lambda d=d: Config(d))
    d = build("qwen2")[0]
    d["use_sliding_window"] = True
    raises("qwen2 use_sliding_window", NotImplementedError, lambda: Config(d))
    d = build("llama")[0]
    d["num_local_experts"] = 8
    raises("mixture of experts", NotImplementedError, lambda: Config(d))
    d = dict(build("llama")[0], model_type="mixtral")
    raises("unknown model_type", ValueError, lambda: Config(d))
    c_, t_ = build("llama")
    t_["model.layers.0.self_attn.q_proj.bias"] = np.zeros(32, np.float32)
    raises("unexpected tensor (bias without attention_bias)", ValueError, lambda: load_model(put("llama_extra", c_, t_)))

    print("== 6. command line ==")
    import subprocess
    out = os.path.join(tmp, "cli.safetensors")
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--grad", "-1:3", folders["qwen3"], out,
                        "3,14,15,9,2", "6,5,35"], capture_output=True, text=True)
    back, meta = read_safetensors(out) if r.returncode == 0 else ({}, {})
    ck.true("CLI: exit 0, p0./p1. prefixes, grad meta", r.returncode == 0 and "p1.logits" in back
            and back["p0.grad_resid_pre0"].shape == (1, 5, 32) and meta.get("grad") == "-1:3"
            and meta.get("model_type") == "qwen3")
    r = subprocess.run([sys.executable, os.path.abspath(__file__), folders["qwen3"], out, "3,14,15"],
                       capture_output=True, text=True)
    back, _ = read_safetensors(out) if r.returncode == 0 else ({}, {})
    ck.true("CLI: one prompt -> no prefix, batch dim 1",
            r.returncode == 0 and back.get("logits", np.zeros(0)).shape == (1, 3, 64) and "tokens" in back)

    if ck.failures:
        print(f"selftest: {ck.count - ck.failures}/{ck.count} passed  (models kept in {tmp})")
        return 1
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"selftest: {ck.count}/{ck.count} passed")
    return 0


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


def run(folder, out, prompts, grad=None, split=False, check=False, ck=None):
    """Computes and writes the reference file. Returns the float64 results
    {prefix: record}."""
    cfg, W = load_model(folder)
    for i, ids in enumerate(prompts):
        bad = [t for t in ids if not 0 <= t < cfg.vocab]
        if bad:
            raise SystemExit(f"prompt {i}: token ids out of range: {bad}")
    same_len = len({len(p) for p in prompts}) == 1
    if len(prompts) == 1 or (same_len and not split):
        groups = [("", prompts)]
    else:
        groups = [(f"p{i}.", [ids]) for i, ids in enumerate(prompts)]
    ck = ck if ck is not None else Checker()
    tensors, results = {}, {}
    for prefix, toks in groups:
        res = run_prompt_group(cfg, W, toks, grad)
        results[prefix] = res
        for k, v in res.items():
            tensors[prefix + k] = to_f32_numpy(v)
        if check:
            print(f"== selfcheck {cfg.family} {prefix or 'batch'} (B={len(toks)}, T={len(toks[0])}) ==")
            tt = torch.tensor(toks, dtype=torch.long)
            rec = {k: v for k, v in res.items() if k not in ("tokens", "grad_resid_pre0")}
            selfcheck(cfg, W, tt, rec, ck)
            if grad is not None:
                check_gradient(cfg, W, tt, grad, res["grad_resid_pre0"], ck)
    meta = {"generator": GENERATOR, "dtype": "float64->float32", "model_type": cfg.family,
            "normalized": "after_affine"}
    if grad is not None:
        meta["grad"] = f"{grad[0]}:{grad[1]}"
    write_safetensors(out, tensors, metadata=meta)
    print(f"wrote {len(tensors)} tensors to {out}")
    if check:
        back, bmeta = read_safetensors(out)
        ck.true("round trip: same tensor names", sorted(back) == sorted(tensors))
        ck.true("round trip: metadata", bmeta.get("generator") == GENERATOR)
        ck.true("round trip: bit-identical data",
                all(back[k].dtype == tensors[k].dtype and back[k].shape == tensors[k].shape
                    and np.array_equal(back[k], tensors[k], equal_nan=True) for k in tensors))
    return cfg, W, results


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--selftest" in argv:
        sys.exit(selftest())
    ap = argparse.ArgumentParser(
        description="Independent float64 reference for llama/mistral/qwen2/qwen3/gemma/gemma2/gemma3_text/"
                    "gpt_neox/phi3: logits + TransformerLens-named activations.")
    ap.add_argument("model_folder")
    ap.add_argument("out")
    ap.add_argument("prompts", nargs="+", help="comma-separated token ids, one argument per prompt")
    ap.add_argument("--grad", type=parse_grad, default=None, metavar="POS:TOKEN")
    ap.add_argument("--split", action="store_true")
    ap.add_argument("--selfcheck", action="store_true")
    for i in range(len(argv) - 1):      # let "--grad -1:7" work
        if argv[i] == "--grad":
            argv[i:i + 2] = ["--grad=" + argv[i + 1]]
            break
    args = ap.parse_args(argv)
    torch.set_grad_enabled(True)
    prompts = [parse_ids(s) for s in args.prompts]
    ck = Checker()
    run(args.model_folder, args.out, prompts, args.grad, args.split, args.selfcheck, ck)
    if args.selfcheck:
        print(f"selfcheck: {ck.count - ck.failures}/{ck.count} passed")
        if ck.failures:
            sys.exit(1)


if __name__ == "__main__":
    main()
