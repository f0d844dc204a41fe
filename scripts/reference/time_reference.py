#!/usr/bin/python3
"""Times the same weights in an eager float32 PyTorch reference (called by `npm run bench`).

OFFLINE ONLY. A plain, reasonably optimised eager implementation of the kind a
PyTorch user writes: F.linear with fused q/k/v and gate/up weights, matmul +
softmax attention (grouped KV heads, no repeat), cached rotary tables and masks.
It reuses families_reference.py's Config/Weights and gpt2_reference.py's Config
but reads each tensor straight to float32, one at a time (no float64 copy).

  /usr/bin/python3 scripts/reference/time_reference.py <model_folder> --seq 128 \
      [--repeats 5] [--threads 1,2] [--backward] [--check] [--seed 0]

Prints one line of JSON on stdout; everything else goes to stderr. --check does
no timing: on the first min(seq, 16) tokens it compares the logits and the input
gradient of this code (in float32, and again in float64) with the float64
forward of families_reference.py / gpt2_reference.py. See README.md.
"""

import argparse
import ctypes
import gc
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_interop_threads(1)

import families_reference as fr  # noqa: E402
import gpt2_reference as g2  # noqa: E402
from safetensors_io import _NP_DTYPES, read_header  # noqa: E402


class LazyTensors(dict):
    """name -> torch tensor of `dtype` (float32), read from the file on each access (one at a time)."""

    def __init__(self, folder, dtype=torch.float32):
        super().__init__()
        self.dtype = dtype
        index = os.path.join(folder, "model.safetensors.index.json")
        files = ["model.safetensors"]
        if not os.path.exists(os.path.join(folder, files[0])) and os.path.exists(index):
            with open(index) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
        for path in (os.path.join(folder, n) for n in files):
            header, start = read_header(path)
            header.pop("__metadata__", None)
            self.update({k: (path, i["dtype"], i["shape"], start + i["data_offsets"][0]) for k, i in header.items()})

    def __getitem__(self, name):
        path, dtype, shape, off = dict.__getitem__(self, name)
        if dtype not in ("F32", "F16", "BF16", "F64"):
            raise ValueError(f"tensor {name}: non-float dtype {dtype}")
        count = int(np.prod(shape, dtype=np.int64))
        with open(path, "rb") as f:
            f.seek(off)
            arr = np.fromfile(f, dtype="<i2" if dtype == "BF16" else _NP_DTYPES[dtype], count=count)
        if arr.size != count:
            raise ValueError(f"tensor {name}: file is truncated")
        t = torch.from_numpy(arr)
        return (t.view(torch.bfloat16) if dtype == "BF16" else t).to(self.dtype).reshape(shape)


ACTS = {"silu": F.silu, "swish": F.silu, "gelu": F.gelu,
        **{k: (lambda x: F.gelu(x, approximate="tanh")) for k in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")}}


class Model:
    """Float32 weights and settings of one decoder; forward() reads these attributes."""

    def __init__(self, **kw):
        self.__dict__.update(kw, tables={})

    def norm(self, x, w, b=None):
        if self.ln:
            return F.layer_norm(x, (x.shape[-1],), w, b, self.eps)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def table(self, T, L, dt):
        """(additive causal/window mask [T,T], cos, sin [T,rot] or None), cached per shape and layer kind."""
        key = (T, dt, L["window"], None if L["inv_freq"] is None else L["inv_freq"].numpy().tobytes())
        if key not in self.tables:
            i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
            ok = (j <= i) & ((i - j < L["window"]) if L["window"] is not None else True)
            cos = sin = None
            if L["inv_freq"] is not None:
                ang = torch.arange(T, dtype=torch.float64)[:, None] * L["inv_freq"][None, :]
                ang = torch.cat([ang, ang], -1)
                cos, sin = ang.cos().to(dt), ang.sin().to(dt)
            self.tables[key] = (torch.zeros(T, T, dtype=dt).masked_fill_(~ok, float("-inf")), cos, sin)
        return self.tables[key]


def rope(x, cos, sin):
    rot = cos.shape[-1]
    xr = x[..., :rot]
    x1, x2 = xr.chunk(2, -1)
    out = xr * cos + torch.cat([-x2, x1], -1) * sin
    return out if rot == x.shape[-1] else torch.cat([out, x[..., rot:]], -1)


def forward(m, x):
    """x: [B,T,D] gathered embedding rows (the gradient leaf). Returns logits [B,T,V]."""
    B, T, _ = x.shape
    H, K, dh = m.H, m.K, m.dh
    rep = H // K
    if m.embed_scale != 1.0:
        x = x * m.embed_scale
    if m.wpe is not None:
        x = x + m.wpe[:T]
    for L in m.layers:
        mask, cos, sin = m.table(T, L, x.dtype)
        h = m.norm(x, L["ln1_w"], L.get("ln1_b"))
        qkv = F.linear(h, L["qkv"], L["qkv_b"]).view(B, T, H + 2 * K, dh).transpose(1, 2)
        q, k, v = qkv.split([H, K, K], dim=1)                       # [B,H|K,T,dh]
        if m.qk_norm:
            q, k = m.norm(q, L["q_norm"]), m.norm(k, L["k_norm"])
        if cos is not None:
            q, k = rope(q, cos, sin), rope(k, cos, sin)
        q = (q * m.scale).reshape(B, K, rep * T, dh)                # query head h reads kv head h // rep
        s = torch.matmul(q, k.transpose(-1, -2))                    # [B,K,rep*T,T]
        if m.attn_cap is not None:
            s = torch.tanh(s / m.attn_cap) * m.attn_cap
        p = torch.softmax(s.view(B, H, T, T) + mask, dim=-1)
        z = torch.matmul(p.view(B, K, rep * T, T), v).view(B, H, T, dh)
        a = F.linear(z.transpose(1, 2).reshape(B, T, H * dh), L["o"], L["o_b"])
        if m.sandwich:
            a = m.norm(a, L["ln1_post_w"])
        if not m.parallel:
            x = x + a
        h2 = m.norm(x, L["ln2_w"], L.get("ln2_b"))
        if m.gated:
            gate, up = F.linear(h2, L["gate_up"], L["gate_up_b"]).chunk(2, -1)
            y = F.linear(m.act(gate) * up, L["down"], L["down_b"])
        else:
            y = F.linear(m.act(F.linear(h2, L["in"], L["in_b"])), L["out"], L["out_b"])
        if m.sandwich:
            y = m.norm(y, L["ln2_post_w"])
        x = x + a + y if m.parallel else x + y
    logits = F.linear(m.norm(x, m.lnf_w, m.lnf_b), m.unembed)
    return logits if m.final_cap is None else torch.tanh(logits / m.final_cap) * m.final_cap


def load_family(folder, d, dtype):
    c = fr.Config(d)
    W = fr.Weights(c, LazyTensors(folder, dtype))            # the reference's names, shapes and checks
    H, K, dh, D = c.n_heads, c.n_kv, c.d_head, c.d_model
    cat = lambda *ts: None if ts[0] is None else torch.cat(ts)  # noqa: E731
    p1 = (lambda t: 1.0 + t) if c.norm == "rms1p" else (lambda t: t)   # Gemma norms scale by (1 + w)
    layers = []
    for i, spec in enumerate(c.layers):
        w, W.layers[i] = W.layers[i], None
        L = {k: w.get(k) for k in ("ln1_b", "ln2_b", "o", "o_b", "down", "down_b", "in", "in_b", "out", "out_b")}
        L.update({k: p1(w[k]) for k in ("ln1_w", "ln2_w", "ln1_post_w", "ln2_post_w", "q_norm", "k_norm") if k in w})
        L.update(window=spec.window, inv_freq=spec.inv_freq)
        if c.family == "gpt_neox":                    # per-head [q|k|v] rows -> [all q | all k | all v]
            L["qkv"] = w["qkv_fused"].view(H, 3, dh, D).transpose(0, 1).reshape(3 * H * dh, D)
            b = w["qkv_fused_b"]
            L["qkv_b"] = None if b is None else b.view(H, 3, dh).transpose(0, 1).reshape(-1)
        else:
            L["qkv"] = w["qkv_cat"] if c.family == "phi3" else torch.cat([w["q"], w["k"], w["v"]])
            L["qkv_b"] = cat(w.get("q_b"), w.get("k_b"), w.get("v_b"))
            L["gate_up"] = w["gate_up"] if c.family == "phi3" else torch.cat([w["gate"], w["up"]])
            L["gate_up_b"] = cat(w.get("gate_b"), w.get("up_b"))
        layers.append(L)
    return Model(family=c.family, layers=layers, embed=W.embed, wpe=None, unembed=W.unembed, lnf_w=p1(W.lnf_w),
                 lnf_b=W.lnf_b, ln=c.norm == "ln", eps=c.eps, H=H, K=K, dh=dh, vocab=c.vocab,
                 embed_scale=c.embed_scale, scale=c.scale, attn_cap=c.attn_cap, final_cap=c.final_cap,
                 qk_norm=c.qk_norm is not None, sandwich=c.sandwich, parallel=c.parallel,
                 gated=c.family != "gpt_neox", act=ACTS[c.act])


def load_gpt2(folder, d, dtype):
    c = g2.Config(d)
    raw = LazyTensors(folder, dtype)
    pre = "transformer." if "transformer.wte.weight" in raw else ""
    layers = []
    for l in range(c.n_layer):
        get = lambda n: raw[f"{pre}h.{l}.{n}"]  # noqa: E731
        L = {k: get(n) for k, n in (("ln1_w", "ln_1.weight"), ("ln1_b", "ln_1.bias"), ("ln2_w", "ln_2.weight"),
                                    ("ln2_b", "ln_2.bias"), ("qkv_b", "attn.c_attn.bias"), ("o_b", "attn.c_proj.bias"),
                                    ("in_b", "mlp.c_fc.bias"), ("out_b", "mlp.c_proj.bias"))}
        L.update({k: get(n).t().contiguous()          # Conv1D [in,out] -> Linear [out,in]
                  for k, n in (("qkv", "attn.c_attn.weight"), ("o", "attn.c_proj.weight"),
                               ("in", "mlp.c_fc.weight"), ("out", "mlp.c_proj.weight"))})
        layers.append(dict(L, window=None, inv_freq=None))
    embed = raw[pre + "wte.weight"]
    return Model(family="gpt2", layers=layers, embed=embed, wpe=raw[pre + "wpe.weight"],
                 unembed=raw["lm_head.weight"] if "lm_head.weight" in raw else embed,
                 lnf_w=raw[pre + "ln_f.weight"], lnf_b=raw[pre + "ln_f.bias"], ln=True, eps=c.eps, H=c.n_head,
                 K=c.n_head, dh=c.d_head, vocab=c.vocab_size, embed_scale=1.0, scale=c.d_head ** -0.5,
                 attn_cap=None, final_cap=None, qk_norm=False, sandwich=False, parallel=False, gated=False,
                 act=ACTS[c.act])


def load(folder, dtype=torch.float32):
    with open(os.path.join(folder, "config.json")) as f:
        d = json.load(f)
    return (load_gpt2 if d.get("model_type") == "gpt2" else load_family)(folder, d, dtype)


def forward_backward(m, tokens, target):
    leaf = F.embedding(tokens, m.embed).requires_grad_()      # weights have requires_grad False
    loss = torch.log_softmax(forward(m, leaf)[0, -1], dim=-1)[target]
    loss.backward()
    return leaf.grad


def best_ms(fn, repeats):
    fn()                                              # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return round(min(times), 3)


def find_openblas():
    """Debian's torch calls the system libblas.so.3 (BLAS_INFO=generic), so torch.set_num_threads does not
    reach OpenBLAS: set_threads also sets OpenBLAS's thread count."""
    with open("/proc/self/maps") as f:
        libs = sorted({os.path.realpath(ln.split()[-1]) for ln in f if "blas" in ln.lower() and "/" in ln})
    for path in libs:
        try:
            return libs, ctypes.CDLL(path).openblas_set_num_threads
        except (OSError, AttributeError):
            pass
    return libs, None


BLAS_LIBS, OPENBLAS_SET_THREADS = find_openblas()


def set_threads(n):
    torch.set_num_threads(n)
    if OPENBLAS_SET_THREADS is not None:
        OPENBLAS_SET_THREADS(n)


def check(m, folder, tokens, target):
    """The timed code in float32, and the same code in float64, vs the float64 reference forward
    (logits and the input gradient). One model in memory at a time."""
    ref, scale = (g2 if m.family == "gpt2" else fr), m.embed_scale
    got = []
    for dtype in (torch.float32, torch.float64):
        m = m or load(folder, dtype)
        with torch.no_grad():
            logits = forward(m, F.embedding(tokens, m.embed))
        got.append((logits, forward_backward(m, tokens, target)))
        m.__dict__.clear()
        m = None
        gc.collect()
    rcfg, rw = ref.load_model(folder)
    with torch.no_grad():
        rlogits = ref.forward(rcfg, rw, tokens)["logits"]
    rgrad = ref.input_gradient(rcfg, rw, tokens, (-1, target)) * scale   # reference leaf = rows * scale
    lmax, gmax = rlogits.abs().max().item(), rgrad.abs().max().item()
    d = [((a.double() - rlogits).abs().max().item(), (g.double() - rgrad).abs().max().item()) for a, g in got]
    return {"check_seq": tokens.shape[1], "logits_max_abs": lmax, "logits_max_abs_diff": d[0][0],
            "grad_max_abs": gmax, "grad_max_abs_diff": d[0][1], "float64_logits_max_abs_diff": d[1][0],
            "float64_grad_max_abs_diff": d[1][1],
            "ok": (d[1][0] <= 1e-9 * max(1.0, lmax) and d[1][1] <= 1e-9 * max(1e-3, gmax)
                   and d[0][0] <= 1e-3 * max(1.0, lmax) and d[0][1] <= 1e-2 * max(1e-3, gmax))}


def main():
    ap = argparse.ArgumentParser(description="Eager float32 PyTorch timing of a HF model folder (one JSON line).")
    ap.add_argument("model_folder")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", default=None, help="comma-separated thread counts (default 1,<cpu count>)")
    ap.add_argument("--backward", action="store_true", help="also time forward + backward to the embeddings")
    ap.add_argument("--check", action="store_true", help="no timing: compare with the float64 reference")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, os.cpu_count() or 1})
    t0 = time.perf_counter()
    m = load(args.model_folder)
    print(f"loaded {m.family} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if m.wpe is not None and args.seq > m.wpe.shape[0]:
        sys.exit(f"--seq {args.seq} exceeds the model's {m.wpe.shape[0]} positions")
    gen = torch.Generator().manual_seed(args.seed)
    tokens = torch.randint(0, m.vocab, (1, args.seq), generator=gen)
    target = int(torch.randint(0, m.vocab, (1,), generator=gen))
    ts = [m.embed, m.wpe, m.unembed, m.lnf_w, m.lnf_b] + [t for L in m.layers for k, t in L.items() if k != "inv_freq"]
    params = sum({t.data_ptr(): t.numel() for t in ts if isinstance(t, torch.Tensor)}.values())  # tied: once
    res = {"model_type": m.family, "params": params, "seq": args.seq}
    if args.check:
        res.update(check(m, args.model_folder, tokens[:, :min(args.seq, 16)], target), torch=torch.__version__)
        print(json.dumps(res))
        sys.exit(0 if res["ok"] else 1)
    fwd, fb = {}, {}
    for n in threads:
        set_threads(n)
        with torch.no_grad():
            fwd[str(n)] = best_ms(lambda: forward(m, F.embedding(tokens, m.embed)), args.repeats)
        if args.backward:
            fb[str(n)] = best_ms(lambda: forward_backward(m, tokens, target), args.repeats)
        print(f"threads {n}: forward {fwd[str(n)]} ms" + (f", forward+backward {fb[str(n)]} ms" if fb else ""),
              file=sys.stderr)
    res["forward_ms"] = fwd
    if args.backward:
        res["forward_backward_ms"] = fb
    res["best_forward_ms"] = min(fwd.values())
    if args.backward:
        res["best_forward_backward_ms"] = min(fb.values())
    res["threads_best_forward"] = int(min(fwd, key=fwd.get))
    blas = re.findall(r"\b(?:BLAS|LAPACK)_INFO=\w+", torch.__config__.show()) + BLAS_LIBS
    blas.append(f"openblas_set_num_threads: {'yes' if OPENBLAS_SET_THREADS else 'not found'}")
    res.update(torch=torch.__version__, blas="; ".join(blas))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
