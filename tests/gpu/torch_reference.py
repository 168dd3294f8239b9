#!/usr/bin/env python3
"""Float64 PyTorch reference for the CUDA backend's tiny-model run.

Reads the directory written by cuda_model_check (initial fp32 parameters, the two packed
microbatches, the backend's step losses, step-1 gradients and parameters after 3 AdamW
steps), recomputes all of it in float64 with autograd, and compares.

The reference model is the minipt transformer: token embedding; per block RMSNorm →
fused QKV (GQA) → rotate-half RoPE (positions restart per sequence) → causal attention
within each sequence → Wo + residual → RMSNorm → SwiGLU → residual; final RMSNorm and an
untied LM head; loss Σ weight·CE over tokens whose target is not -1.

Tolerances (the backend runs bf16 parameters and activations with fp32 accumulation and
fp32 residual stream; bf16 has a relative rounding step of 2^-8):
  step losses          relative error   ≤ 5e-3   (seen: ~1e-4..1e-3)
  step-1 gradients     relative L2 / unit ≤ 5e-2 (bf16 activations and dlogits)
  params after 3 steps ‖p − p_ref‖ / ‖p_ref‖ ≤ 5e-2 (lr 1e-3, weight decay 0.1), and the
                       update error
                       ‖p − p_ref‖ / ‖p_ref − p0‖ ≤ 0.25 (AdamW normalises each
                       element's step, so elements whose gradient is within bf16 noise of
                       zero can move by ±lr differently; this bounds their share).
Exit 0 on success, 1 on a failed check, 77 when PyTorch is not available.
"""
import math
import os
import sys

import numpy as np

try:
    import torch
except ImportError:
    print("PyTorch not available: skipped")
    sys.exit(77)

torch.set_default_dtype(torch.float64)


def main(d):
    if not os.path.exists(os.path.join(d, "meta.txt")):
        print(f"no dump in {d} (the model check was skipped): skipped")
        return 77
    meta = {}
    with open(os.path.join(d, "meta.txt")) as f:
        for line in f:
            k, v = line.split()
            meta[k] = float(v)
    L, H, NH, KVH = int(meta["layers"]), int(meta["hidden"]), int(meta["heads"]), int(meta["kv_heads"])
    F, V = int(meta["ffn"]), int(meta["vocab"])
    theta, eps = meta["rope_theta"], meta["norm_eps"]
    D = H // NH
    KV = KVH * D
    G = NH // KVH

    def load(name, dtype):
        return np.fromfile(os.path.join(d, name), dtype=dtype)

    mbs = []
    for k in range(int(meta["microbatches"])):
        mbs.append(dict(
            tokens=torch.from_numpy(load(f"mb{k}_tokens.i32", np.int32).astype(np.int64)),
            targets=torch.from_numpy(load(f"mb{k}_targets.i32", np.int32).astype(np.int64)),
            weights=torch.from_numpy(load(f"mb{k}_weights.f32", np.float32).astype(np.float64)),
            cu=load(f"mb{k}_cu.i32", np.int32).tolist()))
    U = L + 2
    p0 = [torch.from_numpy(load(f"init_u{u}.f32", np.float32).astype(np.float64)) for u in range(U)]
    params = [p.clone().requires_grad_(True) for p in p0]

    def rms(x, w):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w

    inv_freq = theta ** (-2.0 * torch.arange(D // 2) / D)

    def forward(mb):
        tokens, cu = mb["tokens"], mb["cu"]
        T = tokens.numel()
        pos = torch.cat([torch.arange(cu[i + 1] - cu[i]) for i in range(len(cu) - 1)]).double()
        ang = pos[:, None] * inv_freq[None, :]
        cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]

        def rope(t):
            a, b = t[..., : D // 2], t[..., D // 2:]
            return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)

        x = params[0].view(V, H)[tokens]
        for u in range(1, L + 1):
            p = params[u]
            o = 0
            def take(n, shape):
                nonlocal o
                t = p[o:o + n].view(*shape)
                o += n
                return t
            w_attn = take(H, (H,)); wq = take(H * H, (H, H)); wk = take(KV * H, (KV, H))
            wv = take(KV * H, (KV, H)); wo = take(H * H, (H, H)); w_mlp = take(H, (H,))
            wg = take(F * H, (F, H)); wu = take(F * H, (F, H)); wd = take(H * F, (H, F))
            h = rms(x, w_attn)
            q = rope((h @ wq.T).view(T, NH, D))
            k = rope((h @ wk.T).view(T, KVH, D))
            v = (h @ wv.T).view(T, KVH, D)
            outs = []
            for i in range(len(cu) - 1):
                s, e = cu[i], cu[i + 1]
                qs = q[s:e].transpose(0, 1)                       # [NH][l][D]
                ks = k[s:e].transpose(0, 1).repeat_interleave(G, 0)
                vs = v[s:e].transpose(0, 1).repeat_interleave(G, 0)
                sc = qs @ ks.transpose(1, 2) / math.sqrt(D)
                mask = torch.ones(e - s, e - s, dtype=torch.bool).tril()
                sc = sc.masked_fill(~mask, float("-inf"))
                outs.append((torch.softmax(sc, -1) @ vs).transpose(0, 1).reshape(e - s, H))
            att = torch.cat(outs, 0)
            x1 = x + att @ wo.T
            h2 = rms(x1, w_mlp)
            x = x1 + (torch.nn.functional.silu(h2 @ wg.T) * (h2 @ wu.T)) @ wd.T
        ph = params[L + 1]
        hf = rms(x, ph[:H])
        logits = hf @ ph[H:].view(V, H).T
        valid = mb["targets"] >= 0
        lse = torch.logsumexp(logits, -1)
        tgt = mb["targets"].clamp(min=0)
        ce = lse - logits.gather(1, tgt[:, None])[:, 0]
        ce = torch.where(valid, ce, torch.zeros_like(ce))
        return (mb["weights"] * ce).sum(), ce, valid

    lr, b1, b2, aeps, wd = meta["lr"], meta["beta1"], meta["beta2"], meta["eps"], meta["weight_decay"]
    m = [torch.zeros_like(p) for p in p0]
    v2 = [torch.zeros_like(p) for p in p0]
    losses, grads1, seq_losses = [], None, []
    for step in range(1, int(meta["steps"]) + 1):
        for p in params:
            p.grad = None
        total = 0.0
        for mb in mbs:
            loss, ce, valid = forward(mb)
            loss.backward()
            total += loss.item()
            if step == 1:
                cu = mb["cu"]
                for i in range(len(cu) - 1):
                    sl = slice(cu[i], cu[i + 1])
                    seq_losses.append((ce[sl].sum() / valid[sl].sum()).item())
        losses.append(total)
        if step == 1:
            grads1 = [p.grad.detach().clone() for p in params]
        with torch.no_grad():
            for i, p in enumerate(params):
                g = p.grad
                m[i] = b1 * m[i] + (1 - b1) * g
                v2[i] = b2 * v2[i] + (1 - b2) * g * g
                mh = m[i] / (1 - b1 ** step)
                vh = v2[i] / (1 - b2 ** step)
                p -= lr * (mh / (vh.sqrt() + aeps) + wd * p)

    failures = 0

    def check(what, value, limit):
        nonlocal failures
        ok = value <= limit and math.isfinite(value)
        failures += not ok
        print(f"{'ok' if ok else 'FAIL':6s} {what:52s} {value:.3e} (limit {limit:.1e})")

    got_losses = load("losses.f64", np.float64)
    print("reference losses:", " ".join(f"{x:.6f}" for x in losses))
    print("cuda losses:     ", " ".join(f"{x:.6f}" for x in got_losses))
    for s, (a, b) in enumerate(zip(got_losses, losses)):
        check(f"step {s + 1} loss relative error", abs(a - b) / abs(b), 5e-3)
    got_seq = load("seq_losses.f64", np.float64)
    check("step-1 sequence losses max relative error",
          max(abs(a - b) / abs(b) for a, b in zip(got_seq, seq_losses)), 5e-3)

    def rel(a, b):
        return (torch.linalg.norm(a - b) / torch.linalg.norm(b)).item()

    for u in range(U):
        g = torch.from_numpy(load(f"grad_u{u}.f32", np.float32).astype(np.float64))
        check(f"step-1 gradient unit {u} relative L2", rel(g, grads1[u]), 5e-2)
    for u in range(U):
        pf = torch.from_numpy(load(f"final_u{u}.f32", np.float32).astype(np.float64))
        ref = params[u].detach()
        check(f"3-step params unit {u} relative L2", rel(pf, ref), 5e-2)
        upd = (torch.linalg.norm(pf - ref) / torch.linalg.norm(ref - p0[u])).item()
        check(f"3-step update unit {u} relative L2", upd, 0.25)
    print(("FAILED" if failures else "PASSED") + f": {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
