"""int8 dynamic quantisation of mn04's ONNX graph: does it earn its place? (an investigation)

    python scripts/quantize_mn04.py [--root ../shared/data/gtzan-clips]

Converts mn04 as prediction does (``onnx_graphs.converted_models``), quantises the graph with
ONNX Runtime's ``quantize_dynamic`` (int8 weights), and runs both on every full 10 s window of
every shared GTZAN clip: the largest logit difference, how many clips keep mn04's zero-shot genre
(argmax of the ten genre classes' mean logits), and the time of one clip's three windows on 2
threads (20 runs after a warm-up).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights" / "efficientat" / "mn04_as_mAP_432.pt"
if SHARED_WEIGHTS.is_file():
    os.environ.setdefault("GENREKIT_EFFICIENTAT_WEIGHTS", str(SHARED_WEIGHTS))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan-clips")
    a = ap.parse_args(argv)
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from genrekit.audio import load_audio, resample
    from genrekit.backbones.efficientat import NAME, SR, mel_frontend
    from genrekit.backbones.onnx_graphs import converted_models
    from genrekit.models.audioset import ZERO_SHOT_TEN

    with tempfile.TemporaryDirectory(prefix="genrekit-q-") as tmp:
        fp32, int8 = Path(tmp) / "mn04.onnx", Path(tmp) / "mn04_int8.onnx"
        fp32.write_bytes(converted_models(NAME)["net"])
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        print(f"graph: float32 {fp32.stat().st_size / 1e6:.1f} MB, int8 {int8.stat().st_size / 1e6:.1f} MB")
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        sessions = {k: ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
                    for k, p in (("float32", fp32), ("int8", int8))}
    idx = list(ZERO_SHOT_TEN.values())
    clips = sorted(p for p in a.root.glob("*/*") if p.is_file())
    worst, same = 0.0, 0
    first = None
    for p in clips:
        y = resample(load_audio(p, 22050), 22050, SR)
        mel = np.stack([mel_frontend(y[s : s + 10 * SR]) for s in range(0, len(y) - 10 * SR + 1, 10 * SR)])
        first = mel if first is None else first
        out = {k: s.run(["logits"], {"mel": mel.astype(np.float32)})[0] for k, s in sessions.items()}
        worst = max(worst, float(np.abs(out["float32"] - out["int8"]).max()))
        same += int(np.argmax(out["float32"].mean(0)[idx]) == np.argmax(out["int8"].mean(0)[idx]))
    print(f"{len(clips)} clips: largest |logit float32 - int8| {worst:.3f}; zero-shot genre the same on {same}/{len(clips)}")
    for k, s in sessions.items():
        s.run(["logits"], {"mel": first.astype(np.float32)})
        t0 = time.perf_counter()
        for _ in range(20):
            s.run(["logits"], {"mel": first.astype(np.float32)})
        print(f"{k:8s} {(time.perf_counter() - t0) / 20 * 1000:.1f} ms per {len(first)} windows (2 threads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
