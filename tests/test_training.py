"""Training loop: optimizers/schedulers by name, learning, determinism, resume, the CNN on clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genrekit.models.notebook import build_model, default_config
from genrekit.training import (
    OPTIMIZERS,
    SCHEDULERS,
    TrainConfig,
    make_optimizer,
    make_scheduler,
    seed_everything,
    train,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny nets train faster on one thread, and the test machines are shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _blobs(n=300, d=8, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (k, d))
    y = rng.integers(0, k, n)
    return (centers[y] + rng.normal(0, 1, (n, d))).astype(np.float32), y


def _fnn(d=8, k=3, seed=0):
    seed_everything(seed)
    return build_model(dict(default_config("fnn"), input_shape=[d], n_classes=k, hidden=[16], dropout=0.1))


@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_every_optimizer_trains(opt) -> None:
    x, y = _blobs()
    net = _fnn()
    lr = 0.05 if opt in ("sgd", "adagrad", "radam") else 0.01
    r = train(net, x[:200], y[:200], x[200:], y[200:], ["a", "b", "c"],
              TrainConfig(epochs=10, optimizer=opt, lr=lr, patience=0, threads=1), log=None)
    assert r.best_val_macro_f1 > 0.8, opt


@pytest.mark.parametrize("name", SCHEDULERS)
def test_schedulers_by_name(name) -> None:
    net = _fnn()
    opt = make_optimizer("sgd", net.parameters(), 0.1)
    sch = make_scheduler(name, opt, epochs=10, step_size=2, gamma=0.5)
    if name == "none":
        assert sch is None
        return
    for _ in range(3):
        opt.step()
        sch.step(0.5) if name == "plateau" else sch.step()
    if name in ("step", "cosine", "exponential"):
        assert opt.param_groups[0]["lr"] < 0.1
    with pytest.raises(ValueError):
        make_scheduler("bogus", opt, 10)


def test_early_stopping_restores_best_and_logs(tmp_path: Path) -> None:
    x, y = _blobs()
    net = _fnn()
    r = train(net, x[:200], y[:200], x[200:], y[200:], ["a", "b", "c"],
              TrainConfig(epochs=200, patience=3, lr=0.01), out_dir=tmp_path, log=None)
    assert r.stopped_early and len(r.history) < 200
    assert r.best_epoch == max(r.history, key=lambda h: h["val_macro_f1"])["epoch"]
    logged = json.loads((tmp_path / "history.json").read_text())
    assert len(logged) == len(r.history)
    assert (tmp_path / "history.csv").read_text().startswith("epoch,train_loss")
    assert (tmp_path / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    # restored weights score the best epoch's macro-F1
    from genrekit.evaluation import classification_metrics
    from genrekit.training import predict_probs

    p = predict_probs(net, torch.from_numpy(x[200:]))
    assert classification_metrics(y[200:], p.argmax(1), list("abc"))["macro_f1"] == pytest.approx(r.best_val_macro_f1)


def test_seeded_runs_are_identical() -> None:
    x, y = _blobs()
    runs = []
    for _ in range(2):
        net = _fnn(seed=3)
        r = train(net, x[:200], y[:200], x[200:], y[200:], list("abc"),
                  TrainConfig(epochs=4, seed=3, deterministic=True, input_noise=0.1), log=None)
        runs.append(([h["train_loss"] for h in r.history], net.state_dict()))
    seed_everything(0, deterministic=False)
    assert runs[0][0] == runs[1][0]
    for k in runs[0][1]:
        assert torch.equal(runs[0][1][k], runs[1][1][k])


@pytest.mark.parametrize("scheduler", ["cosine", "plateau"])
def test_resume_continues_an_interrupted_run(tmp_path: Path, scheduler) -> None:
    x, y = _blobs()
    cfg = dict(epochs=6, patience=0, seed=1, scheduler=scheduler, optimizer="adamw")
    full = _fnn(seed=1)
    r_full = train(full, x[:200], y[:200], x[200:], y[200:], list("abc"), TrainConfig(**cfg),
                   out_dir=tmp_path / "full", log=None)
    def interrupt(msg: str) -> None:
        if msg.startswith("epoch   3"):
            raise KeyboardInterrupt  # Ctrl-C right after epoch 3 finished

    part = _fnn(seed=1)
    with pytest.raises(KeyboardInterrupt):
        train(part, x[:200], y[:200], x[200:], y[200:], list("abc"), TrainConfig(**cfg),
              out_dir=tmp_path / "part", log=interrupt)
    resumed = _fnn(seed=99)  # fresh process: different init, all state comes from the checkpoint
    msgs: list[str] = []
    r = train(resumed, x[:200], y[:200], x[200:], y[200:], list("abc"), TrainConfig(**cfg),
              out_dir=tmp_path / "part", resume=True, log=msgs.append)
    assert "resuming from epoch 3" in msgs[0]
    assert [h["epoch"] for h in r.history] == list(range(1, 7))
    assert [h["train_loss"] for h in r.history] == pytest.approx([h["train_loss"] for h in r_full.history])
    for k, v in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v)


def test_cnn_learns_mel_segments_of_shared_clips(gtzan_clips: Path) -> None:
    """End to end on real clips: 4 genres x 2 clips, log-mel 3 s segments; the notebook's CNN must
    fit the training segments (loss falls, training accuracy > 0.9)."""
    from genrekit.datasets import load_audio_folder
    from genrekit.features import LogMelSpec

    spec = LogMelSpec(n_mels=32, segment_seconds=3.0, hop_seconds=3.0)
    bundle = load_audio_folder(gtzan_clips, spec, max_per_label=2, val_fraction=0.0, test_fraction=0.0,
                               workers=1, progress=False)
    keep = np.isin(bundle.splits["train"].y, [bundle.labels.index(g) for g in ("blues", "classical", "metal", "hiphop")])
    tr = bundle.splits["train"]
    x, y = tr.X[keep], tr.y[keep]
    y = np.unique(y, return_inverse=True)[1]
    x = (x - x.mean(axis=(0, 2), keepdims=True)) / x.std(axis=(0, 2), keepdims=True)
    seed_everything(0)
    net = build_model(dict(default_config("cnn"), input_shape=list(x.shape[1:]), n_classes=4, dropout=0.2))
    r = train(net, x, y, x, y, list("abcd"), TrainConfig(epochs=12, batch_size=16, lr=1e-3, patience=0),
              log=None)  # val = train here, so the restored best epoch is the best training-set fit
    losses = [h["train_loss"] for h in r.history]
    assert losses[-1] < 0.5 * losses[0]
    from genrekit.training import predict_probs

    acc = (predict_probs(net, torch.from_numpy(x)).argmax(1) == y).mean()
    assert acc > 0.9, (acc, losses)


def test_resolve_device(monkeypatch) -> None:
    """'auto' takes CUDA only when torch sees it; a missing or unknown device is a one-line error."""
    from genrekit.errors import GenrekitError
    from genrekit.training import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(GenrekitError, match=r"^--device cuda: no CUDA device is available .*use --device cpu$"):
        resolve_device("cuda")
    for bad in ("tpu", "cuda:x"):
        with pytest.raises(GenrekitError, match=f"^--device {bad}: "):
            resolve_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"  # (resolving touches no GPU)


def test_cli_train_rejects_a_missing_device_before_reading_data(tmp_path, capsys, monkeypatch) -> None:
    from genrekit.cli.main import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["train", "--model", "fnn", "--data", str(tmp_path / "no-such-data"), "--out", str(tmp_path / "o"),
               "--device", "cuda", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("genrekit: error: --device cuda: no CUDA device")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/train_device.py)")
def test_cuda_training_matches_cpu_and_hands_back_cpu_tensors(tmp_path: Path) -> None:
    """On a GPU: the same batches as on the CPU (no dropout, so the losses agree to float
    rounding), the net comes back on the CPU, and the checkpoint holds CPU tensors plus the
    GPU's RNG state."""
    from genrekit.training import CHECKPOINT, load_checkpoint

    x, y = _blobs()
    losses = {}
    for dev in ("cpu", "cuda"):
        seed_everything(1)
        net = build_model(dict(default_config("fnn"), input_shape=[8], n_classes=3, hidden=[16], dropout=0.0))
        r = train(net, x[:200], y[:200], x[200:], y[200:], list("abc"),
                  TrainConfig(epochs=3, patience=0, seed=1, input_noise=0.1, device=dev), out_dir=tmp_path / dev, log=None)
        assert next(net.parameters()).device.type == "cpu"
        losses[dev] = [h["train_loss"] for h in r.history]
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=1e-3)
    tensors, _ = load_checkpoint(tmp_path / "cuda" / CHECKPOINT)
    assert "rng.cuda" in tensors and all(t.device.type == "cpu" for t in tensors.values())


def test_resume_refuses_other_settings_or_another_network(tmp_path: Path) -> None:
    """--resume continues the same run: another optimizer or network is a one-line error, more
    epochs (or another device) are fine."""
    from genrekit.errors import GenrekitError

    x, y = _blobs()
    cfg = dict(epochs=2, patience=0, seed=1, optimizer="adamw")
    train(_fnn(seed=1), x[:200], y[:200], x[200:], y[200:], list("abc"), TrainConfig(**cfg), out_dir=tmp_path, log=None)
    with pytest.raises(GenrekitError, match=r"cannot resume: the checkpoint was trained with optimizer='adamw', "
                                            r"this run asks optimizer='sgd'"):
        train(_fnn(seed=1), x[:200], y[:200], x[200:], y[200:], list("abc"), TrainConfig(**dict(cfg, optimizer="sgd")),
              out_dir=tmp_path, resume=True, log=None)
    other = build_model(dict(default_config("fnn"), input_shape=[8], n_classes=3, hidden=[32], dropout=0.1))
    with pytest.raises(GenrekitError, match="cannot resume: the checkpoint holds a different network"):
        train(other, x[:200], y[:200], x[200:], y[200:], list("abc"), TrainConfig(**cfg), out_dir=tmp_path,
              resume=True, log=None)
    r = train(_fnn(seed=1), x[:200], y[:200], x[200:], y[200:], list("abc"),
              TrainConfig(**dict(cfg, epochs=3, device="cpu")), out_dir=tmp_path, resume=True, log=None)
    assert [h["epoch"] for h in r.history] == [1, 2, 3]


def test_epoch_timing_says_when_the_eta_is_an_upper_bound():
    from genrekit.training import epoch_timing

    assert epoch_timing(2.04, 2.0, 30, may_stop_early=False) == "2.0s, ETA 1:00"
    assert epoch_timing(2.04, 2.0, 30, may_stop_early=True) == "2.0s, ETA <= 1:00"
    assert epoch_timing(2.04, 2.0, 0, may_stop_early=True) == "2.0s"


def test_progress_bar_over_each_epochs_batches(capsys):
    x, y = _blobs()
    a = train(_fnn(), x[:200], y[:200], x[200:], y[200:], list("abc"),
              TrainConfig(epochs=2, batch_size=20, seed=0), log=None, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "/10 [" in err  # 200 rows / 20 per batch
    b = train(_fnn(), x[:200], y[:200], x[200:], y[200:], list("abc"),
              TrainConfig(epochs=2, batch_size=20, seed=0), log=None)
    assert capsys.readouterr().err == "" and a.history[-1]["val_loss"] == b.history[-1]["val_loss"]
