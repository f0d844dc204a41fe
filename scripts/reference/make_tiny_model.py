#!/usr/bin/python3
"""Writes a tiny random GPT-2 in Hugging Face layout (config.json + model.safetensors).

OFFLINE helper for testing scripts/reference/gpt2_reference.py and for making
small fixtures. Deterministic for a given --seed.

Usage:
  /usr/bin/python3 scripts/reference/make_tiny_model.py <out_folder> \
      [--layers 2] [--d-model 16] [--heads 4] [--vocab 50] [--positions 32]
      [--n-inner N] [--act gelu_new|gelu] [--dtype F32|F16|BF16] [--seed 0]
      [--prefix transformer.] [--untied] [--buffers] [--std 0.2]

  --std      overall weight scale (embeddings 2.5x, c_attn 2x, biases 0.5x it)

  --prefix   prepend this to every tensor name (HF GPT2LMHeadModel style)
  --untied   also write a separate random lm_head.weight
  --buffers  also write attn.bias / attn.masked_bias buffers (old HF checkpoints)
"""

import argparse
import json
import os
import sys

import numpy as np

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import write_safetensors  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("out_folder")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=16)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=50)
    ap.add_argument("--positions", type=int, default=32)
    ap.add_argument("--n-inner", type=int, default=None)
    ap.add_argument("--act", default="gelu_new", choices=["gelu_new", "gelu"])
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prefix", default="")
    ap.add_argument("--untied", action="store_true")
    ap.add_argument("--buffers", action="store_true")
    ap.add_argument("--std", type=float, default=0.2)
    ap.add_argument("--eps", type=float, default=1e-5)
    a = ap.parse_args(argv)

    D, L, V, P = a.d_model, a.layers, a.vocab, a.positions
    Fi = a.n_inner if a.n_inner is not None else 4 * D
    rng = np.random.default_rng(a.seed)

    def rnd(*shape, std=a.std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    t = {"wte.weight": rnd(V, D, std=2.5 * a.std), "wpe.weight": rnd(P, D, std=1.5 * a.std)}
    for l in range(L):
        p = f"h.{l}."
        t[p + "ln_1.weight"] = 1.0 + rnd(D, std=0.1)
        t[p + "ln_1.bias"] = rnd(D, std=0.1)
        t[p + "attn.c_attn.weight"] = rnd(D, 3 * D, std=2.0 * a.std)
        t[p + "attn.c_attn.bias"] = rnd(3 * D, std=0.5 * a.std)
        t[p + "attn.c_proj.weight"] = rnd(D, D)
        t[p + "attn.c_proj.bias"] = rnd(D, std=0.25 * a.std)
        t[p + "ln_2.weight"] = 1.0 + rnd(D, std=0.1)
        t[p + "ln_2.bias"] = rnd(D, std=0.1)
        t[p + "mlp.c_fc.weight"] = rnd(D, Fi)
        t[p + "mlp.c_fc.bias"] = rnd(Fi, std=0.5 * a.std)
        t[p + "mlp.c_proj.weight"] = rnd(Fi, D)
        t[p + "mlp.c_proj.bias"] = rnd(D, std=0.25 * a.std)
        if a.buffers:
            t[p + "attn.bias"] = np.tril(np.ones((P, P), np.float32)).reshape(1, 1, P, P)
            t[p + "attn.masked_bias"] = np.array(-1e4, dtype=np.float32)
    t["ln_f.weight"] = 1.0 + rnd(D, std=0.1)
    t["ln_f.bias"] = rnd(D, std=0.1)
    t = {a.prefix + k: v for k, v in t.items()}
    if a.untied:
        t["lm_head.weight"] = rnd(V, D, std=2.5 * a.std)

    if a.dtype == "F16":
        t = {k: v.astype(np.float16) for k, v in t.items()}
        dtypes = None
    elif a.dtype == "BF16":
        dtypes = {k: "BF16" for k in t}
    else:
        dtypes = None

    os.makedirs(a.out_folder, exist_ok=True)
    config = {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "n_layer": L, "n_head": a.heads, "n_embd": D, "n_positions": P, "n_ctx": P,
        "vocab_size": V, "layer_norm_epsilon": a.eps, "activation_function": a.act,
        "n_inner": a.n_inner, "tie_word_embeddings": not a.untied,
        "bos_token_id": V - 1, "eos_token_id": V - 1,
    }
    with open(os.path.join(a.out_folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    write_safetensors(os.path.join(a.out_folder, "model.safetensors"), t,
                      metadata={"format": "pt"}, dtypes=dtypes)
    print(f"wrote tiny GPT-2 ({L} layers, D={D}, H={a.heads}, V={V}, P={P}, "
          f"{a.dtype}) to {a.out_folder}")


if __name__ == "__main__":
    main()
