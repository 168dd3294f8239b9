#!/usr/bin/env python3
"""PyTorch baseline for run/bench/step: the same 1.5B-shaped model, microbatches and step.

  step_torch.py gen BUDGET COUNT SEED        print COUNT packed microbatches (one line of
                                            sequence lengths each) of at most BUDGET tokens
                                            drawn from LongAlign-like lengths
  step_torch.py const LENGTH COUNT           COUNT microbatches of one LENGTH-token sequence
  step_torch.py step FILE LABEL [--steps N] [--compile] [--attention varlen|cudnn]
                                 [--no-checkpoint]
  step_torch.py attention FILE [--attention varlen|cudnn]

The model is written the fast PyTorch way: bf16 parameters and activations, fused QKV and
gate/up projections, fused RMSNorm (F.rms_norm), per-layer activation checkpointing
(--no-checkpoint: none),
attention either FlashAttention-2 through torch.nn.attention.varlen.varlen_attn on the
packed batch (--attention varlen, the default; falling back to flash SDPA per sequence) or
cuDNN's fused attention through scaled_dot_product_attention with
SDPBackend.CUDNN_ATTENTION, one call per sequence (--attention cudnn), each validated
forward and backward against a float32 math-SDPA reference before use, the LM head and
cross-entropy in checkpointed chunks of
4096 tokens, fp32 master weights and fp32 gradient accumulation with fused AdamW. With
--compile the dense parts of each block (norms, projections, RoPE, SwiGLU, residuals) go
through torch.compile(dynamic=True). MFU uses the same FLOP count as minipt
(ModelShape::train_flops: 6·N·tokens + 6·hidden·layers·ΣL², causal attention halved);
mfu_full counts attention in full (12·hidden·layers·ΣL², as torchtitan and llm-foundry
report it).
"""
import argparse
import inspect
import math
import sys
import time

import numpy as np

SHAPE = dict(layers=28, hidden=1536, heads=12, kv_heads=2, ffn=8960, vocab=151936,
             theta=1.0e6, eps=1.0e-6)


def gen(budget, count, seed):
    # LongAlign-10k-like: lognormal lengths with mean ≈ 16.5K tokens, clamped to the budget.
    rng = np.random.default_rng(seed)
    sigma = 0.9
    mu = math.log(16500) - sigma * sigma / 2
    out = []
    while len(out) < count:
        lengths = np.clip(rng.lognormal(mu, sigma, size=256), 256, budget).astype(int).tolist()
        bins = []  # first-fit decreasing into microbatches of at most `budget` tokens
        for l in sorted(lengths, reverse=True):
            for b in bins:
                if sum(b) + l <= budget:
                    b.append(l)
                    break
            else:
                bins.append([l])
        rng.shuffle(bins)
        out.extend(bins)
    for b in out[:count]:
        print(" ".join(str(x) for x in b))


def const(length, count):
    for _ in range(count):
        print(length)


def read_lengths(path):
    with open(path) as f:
        return [[int(x) for x in line.split()] for line in f if line.strip()]


def train_flops(tokens, sum_sq):
    s = SHAPE
    h, kv = s["hidden"], s["kv_heads"] * s["hidden"] // s["heads"]
    per_block = h * h * 2 + 2 * kv * h + 3 * s["ffn"] * h
    n = per_block * s["layers"] + s["vocab"] * h
    return 6.0 * n * tokens + 6.0 * h * s["layers"] * sum_sq


def setup_torch():
    import torch
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = True
    return torch


def make_attention(torch, heads, kv_heads, kind="varlen"):
    """Returns (fn, name): fn(q [T,H,D], k [T,KVH,D], v, cu int32 tensor, max_len) → [T,H,D].
    kind "varlen": FlashAttention-2 on the packed batch; "cudnn": cuDNN SDPA per sequence.
    Raises RuntimeError when no candidate of the kind passes the check."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    group = heads // kv_heads

    def sdpa_per_sequence(q, k, v, cu, max_len, cu_list):
        outs = []
        for s, e in zip(cu_list[:-1], cu_list[1:]):
            qs = q[s:e].transpose(0, 1)[None]
            ks = k[s:e].transpose(0, 1).repeat_interleave(group, 0)[None]
            vs = v[s:e].transpose(0, 1).repeat_interleave(group, 0)[None]
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True)
            outs.append(o[0].transpose(0, 1))
        return torch.cat(outs, 0)

    def cudnn_per_sequence(gqa):
        def fn(q, k, v, cu, max_len, cu_list):
            outs = []
            for s, e in zip(cu_list[:-1], cu_list[1:]):
                qs = q[s:e].transpose(0, 1)[None]
                ks = k[s:e].transpose(0, 1)[None]
                vs = v[s:e].transpose(0, 1)[None]
                if not gqa:
                    ks = ks.repeat_interleave(group, 1)
                    vs = vs.repeat_interleave(group, 1)
                with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                    o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True,
                                                       **({"enable_gqa": True} if gqa else {}))
                outs.append(o[0].transpose(0, 1))
            return torch.cat(outs, 0)
        return fn

    def math_reference(q, k, v, cu_list):
        outs = []
        for s, e in zip(cu_list[:-1], cu_list[1:]):
            qs = q[s:e].float().transpose(0, 1)[None]
            ks = k[s:e].float().transpose(0, 1).repeat_interleave(group, 0)[None]
            vs = v[s:e].float().transpose(0, 1).repeat_interleave(group, 0)[None]
            with sdpa_kernel(SDPBackend.MATH):
                o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True)
            outs.append(o[0].transpose(0, 1))
        return torch.cat(outs, 0)

    candidates = []
    if kind == "cudnn":
        # enable_gqa first (no repeated K/V); a build without it fails the check below.
        candidates.append((cudnn_per_sequence(True), "cuDNN SDPA per sequence (enable_gqa)"))
        candidates.append((cudnn_per_sequence(False), "cuDNN SDPA per sequence (KV repeated)"))
    try:
        if kind != "varlen":
            raise ImportError("not asked for")
        from torch.nn.attention.varlen import varlen_attn
        params = inspect.signature(varlen_attn).parameters
        kw = {}
        if "is_causal" in params:
            kw["is_causal"] = True
        elif "window_size" in params:
            kw["window_size"] = (-1, 0)
        gqa = "enable_gqa" in params
        if gqa:
            kw["enable_gqa"] = True
        if kw.get("is_causal") or "window_size" in kw:
            def varlen(q, k, v, cu, max_len, cu_list):
                if not gqa:
                    k = k.repeat_interleave(group, 1)
                    v = v.repeat_interleave(group, 1)
                return varlen_attn(q, k, v, cu, cu, max_len, max_len, **kw)
            candidates.append((varlen, "varlen_attn(" + ",".join(f"{a}={b}" for a, b in kw.items()) + ")"))
    except Exception as e:  # noqa: BLE001
        if kind == "varlen":
            print(f"# varlen_attn unavailable: {e!r}")
    # Validate each candidate (forward and backward) against a float32 math SDPA on a
    # small packed batch; take the first that agrees.
    cu_list = [0, 100, 357, 400]
    T, D = cu_list[-1], 128
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(T, heads, D, device="cuda", dtype=torch.bfloat16, generator=g)
    k = torch.randn(T, kv_heads, D, device="cuda", dtype=torch.bfloat16, generator=g)
    v = torch.randn(T, kv_heads, D, device="cuda", dtype=torch.bfloat16, generator=g)
    cu = torch.tensor(cu_list, dtype=torch.int32, device="cuda")
    qr = q.float().requires_grad_(True)
    ref = math_reference(qr, k, v, cu_list)
    ref.sum().backward()
    for fn, name in candidates:
        try:
            qq = q.clone().requires_grad_(True)
            out = fn(qq, k, v, cu, 257, cu_list)
            out.float().sum().backward()
            err = ((out.float() - ref.detach()).norm() / ref.norm()).item()
            gerr = ((qq.grad.float() - qr.grad).norm() / qr.grad.norm()).item()
            if err < 1e-2 and gerr < 2e-2:
                return fn, name
            print(f"# {name} rejected: relative error {err:.2e}, dq {gerr:.2e}")
        except Exception as e:  # noqa: BLE001
            print(f"# {name} rejected: {e!r}")
    if kind == "cudnn":
        raise RuntimeError("no cuDNN SDPA variant passed the check")
    return sdpa_per_sequence, "flash SDPA per sequence"


def run_step(args):
    torch = setup_torch()
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint
    s = SHAPE
    L, H, NH, KVH, FF, V = s["layers"], s["hidden"], s["heads"], s["kv_heads"], s["ffn"], s["vocab"]
    D = H // NH
    KV = KVH * D
    dev = "cuda"
    bf = torch.bfloat16
    attn, attn_name = make_attention(torch, NH, KVH, args.attention)
    torch.manual_seed(0)

    def param(*shape, std=0.02):
        return torch.nn.Parameter((torch.rand(*shape, device=dev) * 2 - 1).mul_(std * math.sqrt(3)).to(bf))

    emb = param(V, H)
    blocks = []
    for _ in range(L):
        blocks.append(dict(
            attn_norm=torch.nn.Parameter(torch.ones(H, device=dev, dtype=bf)),
            wqkv=param(H + 2 * KV, H), wo=param(H, H),
            mlp_norm=torch.nn.Parameter(torch.ones(H, device=dev, dtype=bf)),
            wgu=param(2 * FF, H), wd=param(H, FF)))
    final_norm = torch.nn.Parameter(torch.ones(H, device=dev, dtype=bf))
    lm_head = param(V, H)
    params = [emb, final_norm, lm_head] + [p for b in blocks for p in b.values()]
    master = [p.detach().float().requires_grad_(True) for p in params]
    for m in master:
        m.grad = torch.zeros_like(m)
    opt = torch.optim.AdamW(master, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0,
                            fused=True)

    def pre_attention(x, w_norm, wqkv, cos, sin):
        h = F.rms_norm(x, (H,), w_norm, s["eps"])
        qkv = h @ wqkv.t()
        q = qkv[:, :H].view(-1, NH, D)
        k = qkv[:, H:H + KV].view(-1, KVH, D)
        v = qkv[:, H + KV:].view(-1, KVH, D)

        def rope(t):
            a, b = t[..., : D // 2], t[..., D // 2:]
            return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)
        return rope(q), rope(k), v

    def post_attention(x, o, wo, w_norm, wgu, wd):
        x = x + o.reshape(-1, H) @ wo.t()
        h = F.rms_norm(x, (H,), w_norm, s["eps"])
        g, u = (h @ wgu.t()).chunk(2, dim=-1)
        return x + (F.silu(g) * u) @ wd.t()

    mode = "eager"
    if args.compile:
        try:
            pre_attention = torch.compile(pre_attention, dynamic=True)
            post_attention = torch.compile(post_attention, dynamic=True)
            mode = "torch.compile(dynamic) dense parts"
        except Exception as e:  # noqa: BLE001
            print(f"# torch.compile unavailable: {e!r}")

    def block_fn(x, b, cos, sin, cu, max_len, cu_list):
        q, k, v = pre_attention(x, b["attn_norm"], b["wqkv"], cos, sin)
        o = attn(q, k, v, cu, max_len, cu_list)
        return post_attention(x, o, b["wo"], b["mlp_norm"], b["wgu"], b["wd"])

    def chunk_loss(hc, w, tgt, wt):
        logits = (hc @ w.t()).float()
        ce = F.cross_entropy(logits, tgt.clamp(min=0), reduction="none")
        return (ce * wt).sum()

    inv_freq = s["theta"] ** (-2.0 * torch.arange(D // 2, device=dev, dtype=torch.float64) / D)
    batches = read_lengths(args.file)
    mbs, tokens, ssq = [], 0, 0.0
    rng = np.random.default_rng(1)
    for lengths in batches:
        T = sum(lengths)
        toks = torch.from_numpy(rng.integers(0, V, size=T)).to(dev)
        cu_list = np.concatenate([[0], np.cumsum(lengths)]).tolist()
        tgt = torch.roll(toks, -1).clone()
        wt = torch.zeros(T, device=dev)
        pos = torch.cat([torch.arange(l, device=dev) for l in lengths]).double()
        for a, b in zip(cu_list[:-1], cu_list[1:]):
            tgt[b - 1] = -1
            wt[a:b - 1] = 1.0 / (b - a - 1) / len(lengths)
        ang = pos[:, None] * inv_freq[None]
        mbs.append(dict(tokens=toks, targets=tgt, weights=wt, cu_list=cu_list,
                        cu=torch.tensor(cu_list, dtype=torch.int32, device=dev),
                        max_len=max(lengths), cos=torch.cos(ang)[:, None, :].to(bf),
                        sin=torch.sin(ang)[:, None, :].to(bf)))
        tokens += T
        ssq += sum(float(l) ** 2 for l in lengths)
    flops = train_flops(tokens, ssq)
    flops_full = flops + 6.0 * H * L * ssq  # attention counted in full
    print(f"[torch {args.label}] device {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"{len(mbs)} microbatches, {tokens} tokens/step, attention: {attn_name}, mode: {mode}")
    torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(args.steps + 1):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        total = 0.0
        for mb in mbs:
            x = emb[mb["tokens"]]
            for b in blocks:
                if args.no_checkpoint:
                    x = block_fn(x, b, mb["cos"], mb["sin"], mb["cu"], mb["max_len"],
                                 mb["cu_list"])
                else:
                    x = checkpoint(block_fn, x, b, mb["cos"], mb["sin"], mb["cu"], mb["max_len"],
                                   mb["cu_list"], use_reentrant=False)
            hf = F.rms_norm(x, (H,), final_norm, s["eps"])
            loss = 0
            for c in range(0, hf.shape[0], 4096):
                sl = slice(c, c + 4096)
                loss = loss + checkpoint(chunk_loss, hf[sl], lm_head, mb["targets"][sl],
                                         mb["weights"][sl], use_reentrant=False)
            loss.backward()
            total += loss.item()
            with torch.no_grad():
                for m, p in zip(master, params):
                    m.grad.add_(p.grad)
                    p.grad = None
        torch.nn.utils.clip_grad_norm_(master, 1.0, foreach=True)
        opt.step()
        with torch.no_grad():
            for m, p in zip(master, params):
                p.copy_(m)
                m.grad.zero_()
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        print(f"[torch {args.label}] step {step}{' (warm-up)' if step == 0 else ''}: {dt:.3f} s, "
              f"loss {total:.4f}, {tokens / dt:.0f} tokens/s, MFU {100 * flops / dt / 989e12:.1f}%")
        if step > 0:
            times.append(dt)
    mean = sum(times) / len(times)
    print(f"PERFORMANCE torch {args.label} tokens_per_s {tokens / mean:.0f} mfu {flops / mean / 989e12:.4f} "
          f"step_s {mean:.4f} tokens {tokens} peak_tflops 989 "
          f"mem_peak_gib {torch.cuda.max_memory_allocated() / 2**30:.2f} loss {total:.4f} "
          f"mode {mode.split()[0]} mfu_full {flops_full / mean / 989e12:.4f} "
          f"attention {args.attention} checkpoint {'none' if args.no_checkpoint else 'all'}")


def run_attention(args):
    torch = setup_torch()
    NH, KVH, D = 12, 2, 128
    attn, name = make_attention(torch, NH, KVH, args.attention)
    print(f"# torch attention path: {name}")
    for lengths in read_lengths(args.file):
        T = sum(lengths)
        cu_list = np.concatenate([[0], np.cumsum(lengths)]).tolist()
        cu = torch.tensor(cu_list, dtype=torch.int32, device="cuda")
        q = torch.randn(T, NH, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        k = torch.randn(T, KVH, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        v = torch.randn(T, KVH, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        do = torch.randn(T, NH, D, device="cuda", dtype=torch.bfloat16)
        tf, tb = [], []
        for rep in range(6):
            e0, e1, e2 = (torch.cuda.Event(enable_timing=True) for _ in range(3))
            e0.record()
            out = attn(q, k, v, cu, max(lengths), cu_list)
            e1.record()
            out.backward(do)
            e2.record()
            torch.cuda.synchronize()
            if rep > 0:
                tf.append(e0.elapsed_time(e1))
                tb.append(e1.elapsed_time(e2))
            q.grad = k.grad = v.grad = None
        tf.sort()
        tb.sort()
        pairs = sum(l * (l + 1) / 2 for l in lengths)
        fwd_flops = 4.0 * D * NH * pairs
        f, b = tf[len(tf) // 2], tb[len(tb) // 2]
        print(f"ATTENTION torch{'-cudnn' if args.attention == 'cudnn' else ''} tokens {T} seqs {len(lengths)} fwd_ms {f:.3f} fwd_tflops "
              f"{fwd_flops / f / 1e9:.1f} bwd_ms {b:.3f} bwd_tflops {2.5 * fwd_flops / b / 1e9:.1f}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("budget", type=int)
    g.add_argument("count", type=int)
    g.add_argument("seed", type=int)
    st = sub.add_parser("step")
    st.add_argument("file")
    st.add_argument("label")
    st.add_argument("--steps", type=int, default=2)
    st.add_argument("--compile", action="store_true")
    st.add_argument("--attention", choices=["varlen", "cudnn"], default="varlen")
    st.add_argument("--no-checkpoint", action="store_true",
                    help="keep every block's activations (no per-layer checkpointing)")
    at = sub.add_parser("attention")
    at.add_argument("file")
    at.add_argument("--attention", choices=["varlen", "cudnn"], default="varlen")
    c = sub.add_parser("const")
    c.add_argument("length", type=int)
    c.add_argument("count", type=int)
    args = ap.parse_args()
    if args.cmd == "gen":
        gen(args.budget, args.count, args.seed)
    elif args.cmd == "const":
        const(args.length, args.count)
    elif args.cmd == "step":
        run_step(args)
    else:
        run_attention(args)


if __name__ == "__main__":
    sys.exit(main())
