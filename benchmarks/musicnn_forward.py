"""The effects behind the default model's forward-pass speed, measured in one run.

    python benchmarks/musicnn_forward.py [--clip ../shared/data/gtzan-clips/rock/rock.00000.wav] [--rounds 12]

1. Batch split: the 10 patches of a 30 s clip through ``musicnn.run_patches`` with different
   ``batch_size`` (patches go in ceil(n / batch_size) nearly equal batches), rounds interleaved so
   that machine load hits every setting alike.
2. BLAS interference: the same forward pass right after a numpy float32 matmul of the mel
   projection's size ([1024, 257] @ [257, 96], which numpy hands to OpenBLAS and its threads),
   against right after the BLAS-free projection genrekit uses (``features._apply_mel_plan``).
   Run it with ``OPENBLAS_NUM_THREADS=1`` as well: the gap should vanish.
3. The two timbral layers (7x38 and 7x67 filters, one input channel) of one forward pass:
   oneDNN's channels-last convolution + max over frequency against genrekit's blocked GEMM
   (``_timbral_gemm``), in bf16 (where native) and float32.
4. Overlapping patches: the clip's 28 patches 1 s apart (the default model's grid) patch by
   patch against the shared front end (``run_patches(..., hop=61)``: one pass over the sequence,
   edge frames recomputed per patch) with 8, 12, 16 and 32 patches per pass, in bf16 (where native)
   and float32.
5. The three temporal layers (128, 64, 32 frames x 1 band) over the whole clip: oneDNN's
   channels-last convolution + max over frequency against the blocked GEMM
   (``_temporal_gemm``), in bf16 (where native) and float32.
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
    ap.add_argument("--clip", default=str(ROOT.parent / "shared/data/gtzan-clips/rock/rock.00000"),
                    help="a clip path, or a GTZAN stem under ../shared/data/gtzan-clips (any extension)")
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from genrekit import features as F
    from genrekit.audio import load_audio
    from genrekit.backbones.musicnn import load_backbone, resolve_precision, run_patches
    from genrekit.datasets import clip_by_stem

    if not Path(args.clip).is_file():
        args.clip = str(clip_by_stem(Path(args.clip).parent.parent, args.clip))
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

    import torch
    from torch.nn import functional as tnf

    def conv_max(xp, w):
        """What genrekit ran before the GEMMs: a channels-last oneDNN convolution + max over F."""
        z = tnf.conv2d(xp[:, None].contiguous(memory_format=torch.channels_last), w)
        return z.amax(dim=3) if z.dtype == torch.bfloat16 else tnf.max_pool2d(z, (1, z.shape[3])).squeeze(3)

    precisions = list(dict.fromkeys((resolve_precision(), "fp32")))
    print("3. timbral layers, 5 patches (median ms)")
    for precision in precisions:
        pnet = load_backbone("MSD_musicnn", precision=precision)
        dt = pnet._gemm[0][0].dtype
        with torch.inference_mode():
            xt = tnf.pad(pnet.bn_input(torch.from_numpy(v[:5]).unsqueeze(1))[:, 0], (0, 0, 3, 3)).to(dt)
            ways = {"conv2d + max": lambda i, p=pnet, x=xt: conv_max(x, p._fused[i][0]),
                    "blocked GEMM": lambda i, p=pnet, x=xt: p._timbral_gemm(x, p._gemm[i])}
            t3: dict[str, list[float]] = {k: [] for k in ways}
            for _ in range(args.rounds):
                for k, f in ways.items():
                    t0 = time.perf_counter()
                    f(0), f(1)
                    t3[k].append(time.perf_counter() - t0)
        for k, t in t3.items():
            print(f"   {precision} {k:14s} {np.median(t) * 1000:7.1f}")

    y16 = load_audio(args.clip, 16000)
    v61 = F.MusicnnSpec().extract(y16).values
    print(f"4. {len(v61)} patches 1 s apart (median ms)")
    for precision in dict.fromkeys((resolve_precision(), "fp32")):
        pnet = load_backbone("MSD_musicnn", precision=precision)
        ways4 = {"patch by patch": lambda pnet=pnet: run_patches(pnet, v61)} | {
            f"shared, {b} per pass": (lambda b=b, pnet=pnet: run_patches(pnet, v61, hop=61, shared_batch=b)) for b in (8, 12, 16, 32)}
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

    seq = torch.from_numpy(np.concatenate([v61[0], *[p[-61:] for p in v61[1:]]]))
    print(f"5. temporal layers over the {len(seq)}-frame sequence (median ms)")
    for precision in precisions:
        pnet = load_backbone("MSD_musicnn", precision=precision)
        dt = pnet._tgemm[0][0].dtype
        with torch.inference_mode():
            xs = pnet.bn_input(seq[None, None])[:, 0]
            pads = [tnf.pad(xs, (0, 0, *pnet._pads(i))).to(dt) for i in (2, 3, 4)]
            ways5 = {"conv2d + max": lambda j, p=pnet, x=pads: conv_max(x[j], p._fused[j + 2][0]),
                     "blocked GEMM": lambda j, p=pnet, x=pads: p._temporal_gemm(x[j], p._tgemm[j])}
            t5: dict[str, list[float]] = {k: [] for k in ways5}
            for _ in range(args.rounds):
                for k, f in ways5.items():
                    t0 = time.perf_counter()
                    f(0), f(1), f(2)
                    t5[k].append(time.perf_counter() - t0)
        for k, t in t5.items():
            print(f"   {precision} {k:14s} {np.median(t) * 1000:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
