#!/usr/bin/python3
"""Independent float64 integrated gradients (PyTorch) for Lantern's IG fixture.

OFFLINE ONLY: writes a committed fixture; the test suite never runs Python.
IG of f = log_softmax(logits)[T-1, TOKEN] wrt the token embeddings, zero
baseline (position embeddings kept), Gauss-Legendre nodes from numpy's
leggauss mapped to [0, 1]:
  a[p, d] = x[p, d] * sum_i w_i df/dx(alpha_i x)[p, d],  score[p] = sum_d a[p, d]

Usage:
  /usr/bin/python3 scripts/reference/ig_reference.py <model_folder> <out.safetensors> <ids> <token> <steps>
"""

import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_reference import forward, load_model  # noqa: E402
from safetensors_io import write_safetensors  # noqa: E402


def main():
    folder, out, ids, token, steps = sys.argv[1:6]
    tokens = torch.tensor([[int(t) for t in ids.split(",")]], dtype=torch.long)
    token, steps = int(token), int(steps)
    cfg, w = load_model(folder)
    T = tokens.shape[1]
    x = w["wte.weight"][tokens]                      # [1, T, D]
    pos = w["wpe.weight"][:T].unsqueeze(0)

    def f(embed):
        rec = forward(cfg, w, tokens, resid_pre0=embed + pos)
        return torch.log_softmax(rec["logits"], dim=-1)[0, T - 1, token]

    nodes, weights = np.polynomial.legendre.leggauss(steps)
    acc = torch.zeros_like(x)
    for a, wt in zip((nodes + 1) / 2, weights / 2):
        e = (float(a) * x).clone().requires_grad_(True)
        (g,) = torch.autograd.grad(f(e), e)
        acc += float(wt) * g
    attr = (x * acc)[0]                              # [T, D]
    with torch.no_grad():
        fx, fb = f(x).item(), f(torch.zeros_like(x)).item()
    write_safetensors(out, {
        "ig_scores": attr.sum(-1).numpy().astype(np.float32),
        "ig_attributions": attr.numpy().astype(np.float32),
        "f_x": np.array([fx], dtype=np.float32),
        "f_baseline": np.array([fb], dtype=np.float32),
    }, metadata={"generator": "scripts/reference/ig_reference.py", "tokens": ids, "token": str(token), "steps": str(steps)})
    print(f"f(x) {fx:.6f}  f(0) {fb:.6f}  sum IG {attr.sum().item():.6f}")


if __name__ == "__main__":
    main()
