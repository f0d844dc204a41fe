#!/usr/bin/python3
"""Writes a small random model in Hugging Face layout for one transformer family.

OFFLINE helper for testing scripts/reference/families_reference.py (the
project writes its real fixture models itself). Writes config.json and
model.safetensors (F32 unless --dtype says otherwise). Deterministic per
--seed.

Usage:
  /usr/bin/python3 scripts/reference/make_family_model.py <model_type> <folder> \
      [--seed 0] [--layers N] [--d-model D] [--heads H] [--kv-heads K] \
      [--head-dim dh] [--ffn F] [--vocab V] [--window W|none] \
      [--rope default|linear|llama3] [--rope-factor f] [--partial p] \
      [--pattern P] [--layout v4|v5] [--dtype F32|F16|BF16] [--shards N] \
      [--bias] [--untied|--tied] [--sequential] [--std 0.05]

  <model_type>  llama | mistral | qwen2 | qwen3 | gemma | gemma2 | gemma3_text
                | gpt_neox | phi3
  --window      sliding window (mistral, phi3, gemma2, gemma3_text); "none" = null
  --rope        rope scaling of the (full-attention) layers
  --partial     partial rotary factor (gpt_neox: rotary_pct; phi3/others:
                partial_rotary_factor)
  --pattern     gemma3_text sliding_window_pattern (sliding iff (l+1) % P != 0)
  --layout      v4: rope_theta / rope_scaling / rotary_pct / rotary_emb_base keys;
                v5: rope_parameters (gemma3_text: nested per layer type)
  --layer-types also write an explicit layer_types list (gemma2/gemma3_text)
  --bias        llama/qwen3/gemma*: attention_bias=true (+ llama mlp_bias)
  --shards N    write model-0000i-of-0000N.safetensors + model.safetensors.index.json

Weights: matrices N(0, std) (std 0.05 by default; q and k projections 4*std so
that attention patterns are not flat; embeddings 0.5, lm_head 0.1), biases
N(0, 0.02), norm weights 1 + N(0, 0.1) (Gemma's (1+w) norms: w ~ N(0, 0.1)).
gemma2 models get small soft-caps (attention 5, final 3) so that they bite.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import write_safetensors  # noqa: E402

FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "gpt_neox", "phi3")

# Per-family defaults for the tiny models.
DEFAULTS = {
    "llama":       dict(layers=2, d_model=32, heads=4, kv_heads=2, head_dim=None, ffn=64, rope="llama3"),
    "mistral":     dict(layers=2, d_model=32, heads=4, kv_heads=2, head_dim=None, ffn=64, window=4),
    "qwen2":       dict(layers=2, d_model=32, heads=4, kv_heads=2, head_dim=None, ffn=64),
    "qwen3":       dict(layers=2, d_model=32, heads=4, kv_heads=2, head_dim=16, ffn=64),
    "gemma":       dict(layers=2, d_model=32, heads=4, kv_heads=2, head_dim=16, ffn=64),
    "gemma2":      dict(layers=2, d_model=32, heads=4, kv_heads=2, head_dim=16, ffn=64, window=4),
    "gemma3_text": dict(layers=3, d_model=32, heads=4, kv_heads=2, head_dim=16, ffn=64, window=4,
                        rope="linear", rope_factor=8.0, pattern=2),
    "gpt_neox":    dict(layers=2, d_model=32, heads=2, kv_heads=None, head_dim=None, ffn=128, partial=0.25),
    "phi3":        dict(layers=2, d_model=32, heads=4, kv_heads=2, head_dim=None, ffn=64, window=5),
}


def build(model_type, seed=0, layers=None, d_model=None, heads=None, kv_heads=None, head_dim=None,
          ffn=None, vocab=64, window="default", rope=None, rope_factor=None, partial=None,
          pattern=None, layout="v4", layer_types=False, bias=False, tied=None, sequential=False,
          std=0.05, theta=None):
    """Returns (config dict, {name: float32 array})."""
    if model_type not in FAMILIES:
        raise SystemExit(f"unknown model_type {model_type!r}; one of {', '.join(FAMILIES)}")
    dflt = DEFAULTS[model_type]
    L = layers if layers is not None else dflt["layers"]
    D = d_model if d_model is not None else dflt["d_model"]
    H = heads if heads is not None else dflt["heads"]
    K = kv_heads if kv_heads is not None else (dflt["kv_heads"] or H)
    dh = head_dim if head_dim is not None else (dflt["head_dim"] or D // H)
    Fi = ffn if ffn is not None else dflt["ffn"]
    V = vocab
    rope = rope if rope is not None else dflt.get("rope", "default")
    rope_factor = rope_factor if rope_factor is not None else dflt.get("rope_factor", 4.0)
    win = dflt.get("window") if window == "default" else window
    part = partial if partial is not None else dflt.get("partial", 1.0)
    pat = pattern if pattern is not None else dflt.get("pattern", 6)
    gemma = model_type.startswith("gemma")
    neox = model_type == "gpt_neox"
    if tied is None:
        tied = gemma
    rng = np.random.default_rng(seed)

    def rnd(*shape, s=std):
        return (rng.standard_normal(shape) * s).astype(np.float32)

    def norm_w(n):
        # Gemma's RMSNorm multiplies by (1 + w): w ~ N(0, 0.1); others 1 + N(0, 0.1)
        return rnd(n, s=0.1) if gemma else (1.0 + rnd(n, s=0.1)).astype(np.float32)

    t = {}
    cfg = {"model_type": model_type, "architectures": [arch_name(model_type)],
           "vocab_size": V, "hidden_size": D, "intermediate_size": Fi,
           "num_hidden_layers": L, "num_attention_heads": H,
           "max_position_embeddings": 128, "tie_word_embeddings": bool(tied),
           "torch_dtype": "float32"}
    if neox:
        cfg.update({"hidden_act": "gelu", "layer_norm_eps": 1e-5,
                    "use_parallel_residual": not sequential, "attention_bias": True})
        t["gpt_neox.embed_in.weight"] = rnd(V, D, s=0.5)
        for l in range(L):
            p = f"gpt_neox.layers.{l}."
            t[p + "input_layernorm.weight"] = norm_w(D)
            t[p + "input_layernorm.bias"] = rnd(D, s=0.02)
            t[p + "post_attention_layernorm.weight"] = norm_w(D)
            t[p + "post_attention_layernorm.bias"] = rnd(D, s=0.02)
            # Fused layout built from separate per-head q/k/v matrices:
            # output rows ordered (head, {q,k,v}, d_head).
            Wq, Wk, Wv = rnd(H * dh, D, s=4 * std), rnd(H * dh, D, s=4 * std), rnd(H * dh, D)
            bq, bk, bv = rnd(H * dh, s=0.02), rnd(H * dh, s=0.02), rnd(H * dh, s=0.02)
            t[p + "attention.query_key_value.weight"] = fuse_neox(Wq, Wk, Wv, H, dh)
            t[p + "attention.query_key_value.bias"] = fuse_neox(bq, bk, bv, H, dh)
            t[p + "attention.dense.weight"] = rnd(D, H * dh)
            t[p + "attention.dense.bias"] = rnd(D, s=0.02)
            t[p + "mlp.dense_h_to_4h.weight"] = rnd(Fi, D)
            t[p + "mlp.dense_h_to_4h.bias"] = rnd(Fi, s=0.02)
            t[p + "mlp.dense_4h_to_h.weight"] = rnd(D, Fi)
            t[p + "mlp.dense_4h_to_h.bias"] = rnd(D, s=0.02)
        t["gpt_neox.final_layer_norm.weight"] = norm_w(D)
        t["gpt_neox.final_layer_norm.bias"] = rnd(D, s=0.02)
        if not tied:
            t["embed_out.weight"] = rnd(V, D, s=0.1)
        base = theta if theta is not None else 10000.0
        if layout == "v5":
            cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": base,
                                      "partial_rotary_factor": part}
        else:
            cfg["rotary_emb_base"] = base
            cfg["rotary_pct"] = part
        return cfg, t

    cfg["num_key_value_heads"] = K
    cfg["rms_norm_eps"] = 1e-5 if model_type == "phi3" else 1e-6
    if model_type in ("qwen3", "gemma", "gemma2", "gemma3_text") or dh != D // H:
        cfg["head_dim"] = dh
    if gemma:
        cfg["hidden_activation"] = "gelu_pytorch_tanh"
        cfg["hidden_act"] = "gelu_pytorch_tanh"
        cfg["query_pre_attn_scalar"] = dh
    else:
        cfg["hidden_act"] = "silu"
    attn_bias = bias and model_type in ("llama", "qwen3", "gemma", "gemma2", "gemma3_text")
    if model_type in ("llama", "qwen3", "gemma", "gemma2", "gemma3_text"):
        cfg["attention_bias"] = bool(attn_bias)
    mlp_bias = bias and model_type == "llama"
    if model_type == "llama":
        cfg["mlp_bias"] = bool(mlp_bias)
    qkv_bias = attn_bias or model_type == "qwen2"
    o_bias = attn_bias
    if model_type in ("qwen2", "qwen3"):
        cfg["use_sliding_window"] = False
        cfg["sliding_window"] = None
    if model_type in ("mistral", "phi3", "gemma2", "gemma3_text"):
        cfg["sliding_window"] = win
    if model_type == "gemma2":
        cfg["attn_logit_softcapping"] = 5.0   # small caps so that they bite on a tiny model
        cfg["final_logit_softcapping"] = 3.0
        if layer_types:
            cfg["layer_types"] = ["sliding_attention" if l % 2 == 0 else "full_attention" for l in range(L)]
    if model_type == "gemma3_text":
        cfg["attn_logit_softcapping"] = None
        cfg["final_logit_softcapping"] = None
        cfg["sliding_window_pattern"] = pat
        if layer_types:
            cfg["layer_types"] = ["sliding_attention" if (l + 1) % pat else "full_attention" for l in range(L)]

    # rope
    base = theta if theta is not None else (1_000_000.0 if model_type == "gemma3_text" else 10000.0)
    scaling = None
    if rope == "linear":
        scaling = {"rope_type": "linear", "factor": rope_factor}
    elif rope == "llama3":
        scaling = {"rope_type": "llama3", "factor": rope_factor, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    elif rope != "default":
        raise SystemExit(f"--rope {rope!r} not supported here")
    if layout == "v5":
        rp = {"rope_type": "default", "rope_theta": base}
        if scaling:
            rp.update(scaling)
        if part != 1.0:
            rp["partial_rotary_factor"] = part
        if model_type == "gemma3_text":
            cfg["rope_parameters"] = {"full_attention": rp,
                                      "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}
        else:
            cfg["rope_parameters"] = rp
    else:
        cfg["rope_theta"] = base
        cfg["rope_scaling"] = scaling
        if model_type == "gemma3_text":
            cfg["rope_local_base_freq"] = 10000.0
        if part != 1.0:
            cfg["partial_rotary_factor"] = part

    t["model.embed_tokens.weight"] = rnd(V, D, s=0.5)
    for l in range(L):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = norm_w(D)
        t[p + "post_attention_layernorm.weight"] = norm_w(D)
        if model_type in ("gemma2", "gemma3_text"):
            t[p + "pre_feedforward_layernorm.weight"] = norm_w(D)
            t[p + "post_feedforward_layernorm.weight"] = norm_w(D)
        Wq, Wk, Wv = rnd(H * dh, D, s=4 * std), rnd(K * dh, D, s=4 * std), rnd(K * dh, D)
        if model_type == "phi3":
            t[p + "self_attn.qkv_proj.weight"] = np.concatenate([Wq, Wk, Wv], 0)
        else:
            t[p + "self_attn.q_proj.weight"] = Wq
            t[p + "self_attn.k_proj.weight"] = Wk
            t[p + "self_attn.v_proj.weight"] = Wv
            if qkv_bias:
                t[p + "self_attn.q_proj.bias"] = rnd(H * dh, s=0.02)
                t[p + "self_attn.k_proj.bias"] = rnd(K * dh, s=0.02)
                t[p + "self_attn.v_proj.bias"] = rnd(K * dh, s=0.02)
        t[p + "self_attn.o_proj.weight"] = rnd(D, H * dh)
        if o_bias:
            t[p + "self_attn.o_proj.bias"] = rnd(D, s=0.02)
        if model_type in ("qwen3", "gemma3_text"):
            t[p + "self_attn.q_norm.weight"] = norm_w(dh)
            t[p + "self_attn.k_norm.weight"] = norm_w(dh)
        Wg, Wu = rnd(Fi, D), rnd(Fi, D)
        if model_type == "phi3":
            t[p + "mlp.gate_up_proj.weight"] = np.concatenate([Wg, Wu], 0)
        else:
            t[p + "mlp.gate_proj.weight"] = Wg
            t[p + "mlp.up_proj.weight"] = Wu
        t[p + "mlp.down_proj.weight"] = rnd(D, Fi)
        if mlp_bias:
            t[p + "mlp.gate_proj.bias"] = rnd(Fi, s=0.02)
            t[p + "mlp.up_proj.bias"] = rnd(Fi, s=0.02)
            t[p + "mlp.down_proj.bias"] = rnd(D, s=0.02)
    t["model.norm.weight"] = norm_w(D)
    if not tied:
        t["lm_head.weight"] = rnd(V, D, s=0.1)
    return cfg, t


def arch_name(model_type):
    return {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
            "qwen3": "Qwen3ForCausalLM", "gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM",
            "gemma3_text": "Gemma3ForCausalLM", "gpt_neox": "GPTNeoXForCausalLM",
            "phi3": "Phi3ForCausalLM"}[model_type]


def fuse_neox(q, k, v, H, dh):
    """Separate q/k/v ([H*dh, ...] each) -> NeoX fused rows ordered (head, {q,k,v}, d)."""
    rest = q.shape[1:]
    parts = [a.reshape((H, 1, dh) + rest) for a in (q, k, v)]
    return np.concatenate(parts, axis=1).reshape((3 * H * dh,) + rest)


def write_model(folder, cfg, tensors, dtype="F32", shards=1):
    os.makedirs(folder, exist_ok=True)
    cfg = dict(cfg, torch_dtype={"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype])
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    dtypes = {k: dtype for k in tensors} if dtype == "BF16" else None
    arrs = tensors if dtype != "F16" else {k: v.astype(np.float16) for k, v in tensors.items()}
    meta = {"format": "pt"}
    if shards <= 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), arrs, metadata=meta, dtypes=dtypes)
        return
    names = sorted(arrs)
    weight_map = {}
    for i in range(shards):
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: arrs[k] for k in names[i::shards]}
        write_safetensors(os.path.join(folder, fname), part, metadata=meta,
                          dtypes={k: dtype for k in part} if dtype == "BF16" else None)
        for k in part:
            weight_map[k] = fname
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        f.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Small random HF-layout model for one family.")
    ap.add_argument("model_type", choices=FAMILIES)
    ap.add_argument("folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--d-model", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--kv-heads", type=int)
    ap.add_argument("--head-dim", type=int)
    ap.add_argument("--ffn", type=int)
    ap.add_argument("--vocab", type=int, default=64)
    ap.add_argument("--window", default="default")
    ap.add_argument("--rope", choices=["default", "linear", "llama3"])
    ap.add_argument("--rope-factor", type=float)
    ap.add_argument("--theta", type=float)
    ap.add_argument("--partial", type=float)
    ap.add_argument("--pattern", type=int)
    ap.add_argument("--layout", choices=["v4", "v5"], default="v4")
    ap.add_argument("--layer-types", action="store_true")
    ap.add_argument("--dtype", choices=["F32", "F16", "BF16"], default="F32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--bias", action="store_true")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--untied", dest="tied", action="store_false", default=None)
    g.add_argument("--tied", dest="tied", action="store_true")
    ap.add_argument("--sequential", action="store_true", help="gpt_neox: use_parallel_residual=false")
    ap.add_argument("--std", type=float, default=0.05)
    a = ap.parse_args(argv)
    window = a.window
    if window not in ("default",):
        window = None if window.lower() in ("none", "null") else int(window)
    cfg, t = build(a.model_type, seed=a.seed, layers=a.layers, d_model=a.d_model, heads=a.heads,
                   kv_heads=a.kv_heads, head_dim=a.head_dim, ffn=a.ffn, vocab=a.vocab, window=window,
                   rope=a.rope, rope_factor=a.rope_factor, partial=a.partial, pattern=a.pattern,
                   layout=a.layout, layer_types=a.layer_types, bias=a.bias, tied=a.tied,
                   sequential=a.sequential, std=a.std, theta=a.theta)
    write_model(a.folder, cfg, t, dtype=a.dtype, shards=a.shards)
    print(f"wrote {a.model_type} model ({len(t)} tensors, {a.dtype}) to {a.folder}")


if __name__ == "__main__":
    main()
