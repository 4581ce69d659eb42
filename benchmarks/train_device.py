"""Training the CNN on a GPU against the CPU, measured in one run; the GPU half needs CUDA.

    python benchmarks/train_device.py [--tracks 120] [--epochs 3] [--json out.json]

Data: synthetic, shaped like the CNN's default input (``LogMelSpec``: 128 mels x 130 frames =
3 s at 22.05 kHz, hop 512), ``--tracks`` tracks x 19 segments, 10 classes that differ in which
mel bands carry energy, plus noise (what is measured is speed and the device round trip, not
genre accuracy). The default CNN (``models.default_config('cnn')``) trains for ``--epochs``
epochs with the same seed on the CPU and, where torch sees one, on CUDA. Printed:

1. seconds per epoch on each device and their ratio (the first epoch, which includes cuDNN's
   kernel search, separately from the rest), and both runs' validation macro-F1;
2. the round trip a user relies on: the GPU-trained model file, loaded on the CPU, predicts
   what the trained net predicted on the GPU (max probability difference);
3. a run interrupted on the GPU after epoch 1 resumes on the CPU from its checkpoint and
   finishes (its history is continuous).

Without CUDA only the CPU half runs and the script says so (the CPU numbers are still printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def synthetic(tracks: int, segments: int = 19, n_mels: int = 128, frames: int = 130, classes: int = 10, seed: int = 0):
    """Standardised [tracks * segments, n_mels, frames] float32 inputs and labels."""
    rng = np.random.default_rng(seed)
    y_track = np.arange(tracks) % classes
    y = np.repeat(y_track, segments)
    x = rng.normal(0, 1, (len(y), n_mels, frames)).astype(np.float32)
    band = n_mels // classes
    for c in range(classes):
        x[y == c, c * band : (c + 1) * band, :] += 0.6
    return x, y


def run_device(device: str, x, y, xv, yv, epochs: int, out_dir: Path | None = None, log=None):
    import torch

    from genrekit.models.notebook import build_model, default_config
    from genrekit.training import TrainConfig, seed_everything, train

    seed_everything(0)
    cfg = dict(default_config("cnn"), input_shape=list(x.shape[1:]), n_classes=int(y.max()) + 1)
    net = build_model(cfg)
    times: list[float] = []
    last = [time.perf_counter()]

    def tick(msg: str) -> None:
        if msg.startswith("epoch"):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now
        if log:
            log(msg)

    r = train(net, x, y, xv, yv, [str(i) for i in range(cfg["n_classes"])],
              TrainConfig(epochs=epochs, batch_size=64, patience=0, device=device, threads=0),
              out_dir=out_dir, log=tick)
    return net, cfg, r, times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=120)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import torch

    from genrekit.models.base import load_model
    from genrekit.models.notebook import TorchGenreModel
    from genrekit.training import predict_probs

    x, y = synthetic(args.tracks)
    xv, yv = synthetic(max(10, args.tracks // 4), seed=1)
    print(f"torch {torch.__version__}; {len(y)} training segments {list(x.shape[1:])}, {len(yv)} validation; "
          f"{args.epochs} epochs, batch 64; CPU threads {torch.get_num_threads()}")
    result: dict = {"segments": int(len(y)), "epochs": args.epochs}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    nets = {}
    for dev in devices:
        net, cfg, r, times = run_device(dev, x, y, xv, yv, args.epochs)
        nets[dev] = (net, cfg)
        rest = float(np.mean(times[1:])) if len(times) > 1 else float(times[0])
        result[dev] = {"first_epoch_s": round(times[0], 3), "later_epoch_s": round(rest, 3),
                       "val_macro_f1": round(r.best_val_macro_f1, 4)}
        name = torch.cuda.get_device_name(0) if dev == "cuda" else "CPU"
        print(f"{dev:4s} ({name}): first epoch {times[0]:.2f} s, later epochs {rest:.2f} s each; "
              f"best val macro-F1 {r.best_val_macro_f1:.3f}", flush=True)
    if "cuda" not in devices:
        print("no CUDA device: the GPU half (ratio, GPU->CPU model file, cross-device resume) was not run")
    else:
        ratio = result["cpu"]["later_epoch_s"] / result["cuda"]["later_epoch_s"]
        result["speedup_later_epochs"] = round(ratio, 1)
        print(f"GPU vs CPU, later epochs: {ratio:.1f}x faster (same data, seed and batch size)")
        net, cfg = nets["cuda"]
        assert next(net.parameters()).device.type == "cpu", "train() must hand the net back on the CPU"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.safetensors"
            mean, std = np.zeros(x.shape[1:2] + (1,), np.float32), np.ones(x.shape[1:2] + (1,), np.float32)
            TorchGenreModel(net, cfg, [str(i) for i in range(cfg["n_classes"])], None, mean, std).save(path)
            on_gpu = predict_probs(net.to("cuda"), torch.from_numpy(xv))
            on_cpu = load_model(path).segment_probs(xv)
            diff = float(np.abs(on_gpu - on_cpu).max())
            same = float((on_gpu.argmax(1) == on_cpu.argmax(1)).mean())
            result["gpu_file_on_cpu"] = {"max_prob_diff": diff, "same_argmax": same}
            print(f"GPU-trained model file on the CPU: max probability difference {diff:.2e}, same argmax {same:.3f}")

            run_dir = Path(tmp) / "run"

            def stop_after_first(msg: str) -> None:
                if msg.startswith("epoch   1"):
                    raise KeyboardInterrupt

            try:
                run_device("cuda", x, y, xv, yv, 2, out_dir=run_dir, log=stop_after_first)
            except KeyboardInterrupt:
                pass
            from genrekit.models.notebook import build_model
            from genrekit.training import TrainConfig, train

            resumed = build_model(cfg)
            msgs: list[str] = []
            r = train(resumed, x, y, xv, yv, [str(i) for i in range(cfg["n_classes"])],
                      TrainConfig(epochs=2, batch_size=64, patience=0, device="cpu"), out_dir=run_dir, resume=True,
                      log=msgs.append)
            epochs = [h["epoch"] for h in r.history]
            result["resume_gpu_to_cpu"] = {"first_message": msgs[0], "epochs": epochs}
            print(f"interrupted on the GPU after epoch 1, resumed on the CPU: '{msgs[0]}', history epochs {epochs}")
            if epochs != [1, 2]:
                print("FAILED: the resumed history is not continuous")
                return 1
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
