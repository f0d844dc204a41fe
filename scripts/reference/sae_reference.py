"""Independent PyTorch reference for Lantern's sparse autoencoders (offline only).

Writes fixtures/sae/reference.json: for small random SAEs of each architecture, the inference
forward (pre-activations, feature activations, reconstruction) and the training losses and
their gradients with respect to every parameter, computed in float64 with SAELens's definitions:

- process_sae_in: normalise (constant_norm_rescale: x * sqrt(d_in) / ||x||; layer_norm:
  (x - mean) / (unbiased std + 1e-5)), then subtract b_dec when apply_b_dec_to_input;
- pre = sae_in @ W_enc + b_enc; acts = ReLU / TopK(ReLU) / BatchTopK / JumpReLU;
- recons = acts @ W_dec + b_dec, then the normalisation undone;
- mse = sum over dims, mean over rows; standard/transcoder L1 = coef * mean_rows sum_j acts_j ||W_dec_j||;
  JumpReLU L0 = coef * mean_rows sum_j step(pre_j - threshold_j) with rectangle-kernel
  straight-through gradients (threshold = exp(log_threshold)); TopK/BatchTopK aux-k loss =
  coef * min(n_dead / k_aux, 1) * mean_rows ||decode(top-k_aux dead pre) - (x - x_hat)||^2,
  k_aux = min(d_in // 2, n_dead).

It also writes SAE folders in SAELens's layout (current and pre-6.0 cfg.json,
sae_weights.safetensors, sparsity.safetensors) and a Gemma Scope params.npz, with the
reconstructions they must give. Tests read these files; they never run this script.

Usage: /usr/bin/python3 scripts/reference/sae_reference.py fixtures/sae
"""

import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import write_safetensors  # noqa: E402

torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(1234)


def randn(*shape, scale=1.0):
    # round to float32 so the TypeScript side starts from exactly these numbers
    return (torch.randn(*shape, generator=gen) * scale).float().double()


def rectangle(x):
    return ((x > -0.5) & (x < 0.5)).double()


class JumpReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold, bandwidth):
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return x * (x > threshold)

    @staticmethod
    def backward(ctx, g):
        x, threshold = ctx.saved_tensors
        bw = ctx.bandwidth
        return (x > threshold) * g, (-(threshold / bw) * rectangle((x - threshold) / bw) * g).sum(0), None


class Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold, bandwidth):
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return (x > threshold).double()

    @staticmethod
    def backward(ctx, g):
        x, threshold = ctx.saved_tensors
        bw = ctx.bandwidth
        return None, (-(1.0 / bw) * rectangle((x - threshold) / bw) * g).sum(0), None


def norm_in(x, mode, d_in):
    if mode == "constant_norm_rescale":
        c = math.sqrt(d_in) / x.norm(dim=-1, keepdim=True)
        return x * c, lambda y: y / c
    if mode == "layer_norm":
        mu = x.mean(dim=-1, keepdim=True)
        xc = x - mu
        std = xc.std(dim=-1, keepdim=True)
        return xc / (std + 1e-5), lambda y: y * std + mu
    return x, lambda y: y


def topk_acts(pre, k):
    vals, idx = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, vals.relu())


def forward(case, p, x, training):
    arch = case["architecture"]
    xin, out_fn = norm_in(x, case["normalizeActivations"], case["dIn"])
    sae_in = xin - p["b_dec"] if case["applyBDecToInput"] else xin
    pre = sae_in @ p["W_enc"] + p["b_enc"]
    scale = None
    if arch in ("standard", "transcoder"):
        acts = pre.relu()
    elif arch == "topk":
        ranked = pre
        if case.get("rescaleActsByDecoderNorm"):
            norms = p["W_dec"].norm(dim=1)
            ranked = pre * norms
            scale = 1 / norms
        acts = topk_acts(ranked, case["k"])
    elif arch == "batchtopk":
        r = pre.relu()
        flat = r.flatten()
        kept = int(round(case["k"] * x.shape[0]))
        v, i = flat.topk(kept)
        acts = torch.zeros_like(flat).scatter(-1, i, v).reshape(r.shape)
    elif arch == "jumprelu":
        if training:
            acts = JumpReLU.apply(pre, p["log_threshold"].exp(), case["bandwidth"])
        else:
            acts = pre.relu() * (pre > p["threshold"])
    recons = (acts * scale if scale is not None else acts) @ p["W_dec"] + p["b_dec"]
    return pre, acts, recons, out_fn(recons), out_fn


def losses(case, p, x, target, dead):
    pre, acts, recons, out, out_fn = forward(case, p, x, True)
    mse = ((out - target) ** 2).sum(-1).mean()
    arch = case["architecture"]
    sparsity = torch.zeros(())
    aux = torch.zeros(())
    if arch in ("standard", "transcoder"):
        sparsity = case["coefficient"] * (acts * p["W_dec"].norm(dim=1)).norm(p=1, dim=-1).mean()
    elif arch == "jumprelu":
        sparsity = case["coefficient"] * Step.apply(pre, p["log_threshold"].exp(), case["bandwidth"]).sum(-1).mean()
    elif dead is not None and dead.sum() > 0:
        num_dead = int(dead.sum())
        k_aux = case["dIn"] // 2
        scale = min(num_dead / k_aux, 1.0)
        k_aux = min(k_aux, num_dead)
        residual = (target - out).detach()
        cand = torch.where(dead[None].bool(), pre, torch.tensor(-math.inf))
        v, i = cand.topk(k_aux, dim=-1)
        aux_acts = torch.zeros_like(pre).scatter(-1, i, v)
        aux_out = out_fn(aux_acts @ p["W_dec"] + p["b_dec"])
        aux = case["auxCoefficient"] * scale * ((aux_out - residual) ** 2).sum(-1).mean()
    return mse, sparsity, aux


def arr(t):
    return [float(v) for v in t.detach().flatten().tolist()]


def make_params(case):
    d_in, d_sae, d_out = case["dIn"], case["dSae"], case["dOut"]
    p = {
        "W_enc": randn(d_in, d_sae, scale=0.5),
        "W_dec": randn(d_sae, d_out, scale=0.5),
        "b_enc": randn(d_sae, scale=0.2),
        "b_dec": randn(d_out, scale=0.2),
    }
    if case["architecture"] == "jumprelu":
        p["log_threshold"] = torch.log(torch.rand(d_sae, generator=gen) * 0.6 + 0.1).float().double()
        p["threshold"] = p["log_threshold"].exp()
    return p


def base(arch, **kw):
    c = {"architecture": arch, "dIn": 6, "dSae": 10, "dOut": 6, "applyBDecToInput": arch != "transcoder", "normalizeActivations": "none"}
    c.update(kw)
    return c


CASES = [
    ("standard", base("standard", coefficient=0.7)),
    ("standard-layer-norm", base("standard", coefficient=0.3, normalizeActivations="layer_norm")),
    ("standard-constant-norm", base("standard", coefficient=0.3, normalizeActivations="constant_norm_rescale", applyBDecToInput=False)),
    ("topk-4-dead", base("topk", k=3, auxCoefficient=0.5, dead=[1, 0, 1, 1, 0, 0, 1, 0, 0, 0])),
    ("topk-2-dead", base("topk", k=3, auxCoefficient=0.5, dead=[0, 0, 0, 1, 0, 0, 0, 0, 1, 0])),
    ("topk-rescaled", base("topk", k=3, rescaleActsByDecoderNorm=True, inferenceOnly=True)),
    ("batchtopk", base("batchtopk", k=2, auxCoefficient=0.25, dead=[0, 1, 0, 0, 0, 1, 0, 1, 0, 0])),
    ("jumprelu", base("jumprelu", coefficient=0.4, bandwidth=0.5)),
    ("transcoder", base("transcoder", dOut=4, coefficient=0.6)),
]


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    batch = 5
    result = {"batch": batch, "cases": {}}
    for name, case in CASES:
        p = make_params(case)
        x = randn(batch, case["dIn"])
        target = randn(batch, case["dOut"]) if case["architecture"] == "transcoder" else x
        entry = {"config": case, "x": arr(x), "params": {k: arr(v) for k, v in p.items()}}
        if case["architecture"] == "transcoder":
            entry["target"] = arr(target)
        if case["architecture"] != "batchtopk":
            with torch.no_grad():
                pre, acts, recons, out, _ = forward(case, p, x, False)
            entry["forward"] = {"acts_pre": arr(pre), "acts_post": arr(acts), "recons": arr(recons), "out": arr(out)}
        if not case.get("inferenceOnly"):
            train_p = {k: v.clone().requires_grad_(True) for k, v in p.items() if k != "threshold"}
            dead = torch.tensor(case["dead"], dtype=torch.float64) if "dead" in case else None
            mse, sparsity, aux = losses(case, train_p, x, target, dead)
            loss = mse + sparsity + aux
            loss.backward()
            entry["training"] = {
                "loss": float(loss), "mse": float(mse), "sparsity": float(sparsity), "aux": float(aux),
                "grads": {k: arr(v.grad) for k, v in train_p.items()},
            }
        result["cases"][name] = entry
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(result, f)

    # SAELens folders and a Gemma Scope npz for the loaders, shaped for the bundled model's residual
    # stream (d_model 256), with the reconstructions of fixed rows.
    d_in, d_sae = 256, 64
    rows = randn(4, d_in, scale=2.0)
    files = {}

    def saelens_folder(sub, cfg, arch_case, sparsity=None):
        p = make_params(arch_case)
        folder = os.path.join(out_dir, sub)
        os.makedirs(folder, exist_ok=True)
        tensors = {k: p[k].float().numpy() for k in ("W_enc", "W_dec", "b_enc", "b_dec")}
        if arch_case["architecture"] == "jumprelu":
            tensors["threshold"] = p["threshold"].float().numpy()
        write_safetensors(os.path.join(folder, "sae_weights.safetensors"), tensors)
        with open(os.path.join(folder, "cfg.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        if sparsity is not None:
            write_safetensors(os.path.join(folder, "sparsity.safetensors"), {"sparsity": sparsity})
        with torch.no_grad():
            _, acts, _, out, _ = forward(arch_case, p, rows, False)
        files[sub] = {"out": arr(out), "l0": arr((acts > 0).double().sum(-1))}

    topk_case = {"architecture": "topk", "dIn": d_in, "dSae": d_sae, "dOut": d_in, "k": 8, "applyBDecToInput": True, "normalizeActivations": "none"}
    saelens_folder("saelens-topk", {
        "architecture": "topk", "d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
        "normalize_activations": "none", "reshape_activations": "none", "k": 8, "rescale_acts_by_decoder_norm": False,
        "metadata": {"sae_lens_version": "6.5.1", "sae_lens_training_version": "6.5.1", "model_name": "lantern-demo", "hook_name": "blocks.1.hook_resid_post", "context_size": 128, "prepend_bos": False},
    }, topk_case, sparsity=np.linspace(-5, -1, d_sae).astype(np.float32))
    pre6_case = {"architecture": "standard", "dIn": d_in, "dSae": d_sae, "dOut": d_in, "applyBDecToInput": True, "normalizeActivations": "layer_norm"}
    saelens_folder("saelens-pre6", {
        "model_name": "lantern-demo", "hook_point": "blocks.1.hook_resid_post", "hook_point_layer": 1, "hook_point_head_index": None,
        "d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu", "activation_fn_str": "relu", "apply_b_dec_to_input": True,
        "finetuning_scaling_factor": False, "context_size": 128, "normalize_activations": "layer_norm", "sae_lens_training_version": "3.13.0",
    }, pre6_case)
    # pre-6.0 TopK: activation_fn 'topk' with its k in activation_fn_kwargs
    pre6_topk = dict(topk_case, k=5)
    saelens_folder("saelens-pre6-topk", {
        "model_name": "lantern-demo", "hook_name": "blocks.1.hook_resid_post", "d_in": d_in, "d_sae": d_sae, "dtype": "float32",
        "activation_fn": "topk", "activation_fn_kwargs": {"k": 5}, "apply_b_dec_to_input": True, "normalize_activations": False,
        "sae_lens_version": "5.2.0",
    }, pre6_topk)

    gemma_case = {"architecture": "jumprelu", "dIn": d_in, "dSae": d_sae, "dOut": d_in, "applyBDecToInput": False, "normalizeActivations": "none"}
    p = make_params(gemma_case)
    folder = os.path.join(out_dir, "gemma-scope-res", "layer_1", "width_64", "average_l0_20")
    os.makedirs(folder, exist_ok=True)
    np.savez(os.path.join(folder, "params.npz"), W_enc=p["W_enc"].float().numpy(), W_dec=p["W_dec"].float().numpy(),
             b_enc=p["b_enc"].float().numpy(), b_dec=p["b_dec"].float().numpy(), threshold=p["threshold"].float().numpy())
    # the same SAE as params.safetensors with lower-case keys
    write_safetensors(os.path.join(folder, "params.safetensors"), {
        "w_enc": p["W_enc"].float().numpy(), "w_dec": p["W_dec"].float().numpy(), "b_enc": p["b_enc"].float().numpy(),
        "b_dec": p["b_dec"].float().numpy(), "threshold": p["threshold"].float().numpy()})
    with torch.no_grad():
        _, acts, _, out, _ = forward(gemma_case, p, rows, False)
    files["gemma-scope-res/layer_1/width_64/average_l0_20"] = {"out": arr(out), "l0": arr((acts > 0).double().sum(-1))}

    with open(os.path.join(out_dir, "loaders.json"), "w") as f:
        json.dump({"rows": arr(rows), "dIn": d_in, "files": files}, f)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures/sae")
