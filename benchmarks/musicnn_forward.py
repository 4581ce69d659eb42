"""Two effects behind the default model's forward-pass speed, measured in one run.

    python benchmarks/musicnn_forward.py [--clip ../shared/data/gtzan-clips/rock/rock.00000.wav] [--rounds 12]

1. Batch split: the 10 patches of a 30 s clip through ``musicnn.run_patches`` with different
   ``batch_size`` (patches go in ceil(n / batch_size) nearly equal batches), rounds interleaved so
   that machine load hits every setting alike.
2. BLAS interference: the same forward pass right after a numpy float32 matmul of the mel
   projection's size ([1024, 257] @ [257, 96], which numpy hands to OpenBLAS and its threads),
   against right after the BLAS-free projection genrekit uses (``features._apply_mel_plan``).
   Run it with ``OPENBLAS_NUM_THREADS=1`` as well: the gap should vanish.
3. The two bf16 timbral layers (7x38 and 7x67 filters, one input channel) of one forward pass:
   oneDNN's channels-last convolution + max over frequency against genrekit's blocked GEMM
   (``_timbral_gemm``), on the clip's bf16-fused backbone (needs the bf16 path).
4. Overlapping patches: the clip's 28 patches 1 s apart (the default model's grid) patch by
   patch against the shared front end (``run_patches(..., hop=61)``: one pass over the sequence,
   edge frames recomputed per patch) with 8, 12 and 32 patches per pass, in bf16 (where native)
   and float32.
5. The three bf16 temporal layers (128, 64, 32 frames x 1 band) over the whole clip: oneDNN's
   channels-last convolution + max over frequency against the blocked GEMM
   (``_temporal_gemm``).
Medians in ms; the backbone in the default precision (``GENREKIT_MUSICNN_PRECISION``) unless
said otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default=str(ROOT.parent / "shared/data/gtzan-clips/rock/rock.00000.wav"))
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from genrekit import features as F
    from genrekit.audio import load_audio
    from genrekit.musicnn import load_backbone, resolve_precision, run_patches

    net = load_backbone("MSD_musicnn")
    v = F.MusicnnSpec(patch_hop_frames=183).extract(load_audio(args.clip, 16000)).values
    run_patches(net, v)
    print(f"{len(v)} patches, precision {resolve_precision()}")

    sizes = (4, 5, 6, 8, 10, 32)
    times: dict[int, list[float]] = {b: [] for b in sizes}
    for _ in range(args.rounds):
        for b in sizes:
            t0 = time.perf_counter()
            run_patches(net, v, batch_size=b)
            times[b].append(time.perf_counter() - t0)
    print("1. batch split (batch_size: median ms for the clip)")
    for b in sizes:
        n = -(-len(v) // b)
        split = "+".join(str(len(c)) for c in np.array_split(np.arange(len(v)), n))
        print(f"   {b:>3}  ({split:>9}) {np.median(times[b]) * 1000:7.1f}")

    rng = np.random.default_rng(0)
    pw = rng.random((1024, 257)).astype(np.float32)
    fb = F.mel_filterbank(16000, 512, 96)
    fb_t, plan = np.ascontiguousarray(fb.T), F._mel_plan(fb)
    after = {"numpy matmul (OpenBLAS)": [], "BLAS-free projection": []}
    for _ in range(args.rounds):
        for name in after:
            for _ in range(3):
                _ = pw @ fb_t if name.startswith("numpy") else F._apply_mel_plan(pw, plan, 96)
            t0 = time.perf_counter()
            run_patches(net, v)
            after[name].append(time.perf_counter() - t0)
    print("2. forward pass right after the mel projection (median ms)")
    for name, t in after.items():
        print(f"   after {name:26s} {np.median(t) * 1000:7.1f}")

    if getattr(net, "_gemm", None):
        import torch
        from torch.nn import functional as tnf

        x = torch.from_numpy(v[:5])  # one batch, as run_patches sends it
        with torch.inference_mode():
            x16 = tnf.pad(net.bn_input(x.unsqueeze(1))[:, 0], (0, 0, 3, 3)).bfloat16()
            xc = x16[:, None].contiguous(memory_format=torch.channels_last)
            ways = {"conv2d + max": lambda i: tnf.conv2d(xc, net._fused[i][0]).amax(dim=3),
                    "blocked GEMM": lambda i: net._timbral_gemm(x16, net._gemm[i])}
            t3: dict[str, list[float]] = {k: [] for k in ways}
            for _ in range(args.rounds):
                for k, f in ways.items():
                    t0 = time.perf_counter()
                    f(0), f(1)
                    t3[k].append(time.perf_counter() - t0)
        print("3. bf16 timbral layers, 5 patches (median ms)")
        for k, t in t3.items():
            print(f"   {k:14s} {np.median(t) * 1000:7.1f}")

    y16 = load_audio(args.clip, 16000)
    v61 = F.MusicnnSpec().extract(y16).values
    print(f"4. {len(v61)} patches 1 s apart (median ms)")
    for precision in dict.fromkeys((resolve_precision(), "fp32")):
        pnet = load_backbone("MSD_musicnn", precision=precision)
        ways4 = {"patch by patch": lambda pnet=pnet: run_patches(pnet, v61)} | {
            f"shared, {b} per pass": (lambda b=b, pnet=pnet: run_patches(pnet, v61, hop=61, shared_batch=b)) for b in (8, 12, 32)}
        t4: dict[str, list[float]] = {k: [] for k in ways4}
        for f in ways4.values():
            f()
        for _ in range(max(3, args.rounds // 2)):
            for k, f in ways4.items():
                t0 = time.perf_counter()
                f()
                t4[k].append(time.perf_counter() - t0)
        for k, t in t4.items():
            print(f"   {precision} {k:22s} {np.median(t) * 1000:7.1f}")

    if getattr(net, "_tgemm", None):
        import torch
        from torch.nn import functional as tnf

        with torch.inference_mode():
            seq = torch.from_numpy(np.concatenate([v61[0], *[p[-61:] for p in v61[1:]]]))
            xs = net.bn_input(seq[None, None])[:, 0]
            pads = [tnf.pad(xs, (0, 0, *net._pads(i))).bfloat16() for i in (2, 3, 4)]
            ways5 = {"conv2d + max": lambda j: tnf.conv2d(pads[j][:, None].contiguous(memory_format=torch.channels_last),
                                                          net._fused[j + 2][0]).amax(dim=3),
                     "blocked GEMM": lambda j: net._temporal_gemm(pads[j], net._tgemm[j])}
            t5: dict[str, list[float]] = {k: [] for k in ways5}
            for _ in range(args.rounds):
                for k, f in ways5.items():
                    t0 = time.perf_counter()
                    f(0), f(1), f(2)
                    t5[k].append(time.perf_counter() - t0)
        print(f"5. bf16 temporal layers over the {len(seq)}-frame sequence (median ms)")
        for k, t in t5.items():
            print(f"   {k:14s} {np.median(t) * 1000:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
