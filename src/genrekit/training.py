"""Training loop: optimizers and schedulers by name, early stopping on validation macro-F1,
best-checkpoint restore, seeds / deterministic mode, per-epoch logs and resumable checkpoints.

Training runs on the CPU or a GPU (``TrainConfig.device``: "auto" takes CUDA when torch sees
one). Data stay on the CPU and go to the device batch by batch; random numbers (batch order,
input noise) come from a CPU generator, so batch order does not depend on the device. The
returned net is always back on the CPU, and checkpoints and model files hold CPU tensors:
a run trained on a GPU predicts, evaluates and resumes on a machine without one.

The checkpoint is a single safetensors file (weights, best weights, optimizer tensors, RNG state)
whose JSON metadata holds the epoch, history and scheduler state; it is replaced atomically after
every epoch, so an interrupted run resumes from its last finished epoch with `resume=True`.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genrekit.errors import GenrekitError, ModelFileError, one_line
from genrekit.evaluation import classification_metrics
from genrekit.models.modelfile import DIGEST_KEY, atomic_path, check_digest, tensors_digest, write_text_atomic

OPTIMIZERS = ("sgd", "adam", "adamw", "adamax", "adagrad", "rmsprop", "nadam", "radam")
SCHEDULERS = ("none", "step", "cosine", "plateau", "exponential")
CHECKPOINT = "checkpoint.safetensors"


@dataclass
class TrainConfig:
    """Everything that decides how a run trains; stored in the model file for the record."""

    epochs: int = 100
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "none"
    step_size: int = 30
    gamma: float = 0.1
    patience: int = 20  # epochs without a better val macro-F1 before stopping; 0 = never stop early
    label_smoothing: float = 0.0
    input_noise: float = 0.0  # std of Gaussian noise added to (standardised) training inputs
    seed: int = 0
    deterministic: bool = False
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    device: str = "auto"  # "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:N" or "mps"

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainResult:
    history: list[dict]
    best_epoch: int
    best_val_macro_f1: float
    seconds: float
    stopped_early: bool
    config: dict = field(default_factory=dict)


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0, momentum: float = 0.9):
    """A torch optimizer by (case-insensitive) name; SGD and RMSprop get `momentum`."""
    n = name.lower()
    if n == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if n == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    table = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax,
             "adagrad": torch.optim.Adagrad, "nadam": torch.optim.NAdam, "radam": torch.optim.RAdam}
    if n not in table:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    return table[n](params, lr=lr, weight_decay=weight_decay)


def make_scheduler(name: str, optimizer, epochs: int, step_size: int = 30, gamma: float = 0.1):
    """An LR scheduler stepped once per epoch ('plateau' watches validation macro-F1)."""
    n = (name or "none").lower()
    if n == "none":
        return None
    if n == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if n == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if n == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=5)
    if n == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.97 if gamma == 0.1 else gamma)
    raise ValueError(f"unknown scheduler {name!r}; choose from {', '.join(SCHEDULERS)}")


DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device a ``TrainConfig.device`` names; a clear error when it is not there."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise GenrekitError(f"--device {name}: not a device (use {', '.join(DEVICES)} or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "torch sees no CUDA GPU"
            raise GenrekitError(f"--device {name}: no CUDA device is available ({why}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise GenrekitError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise GenrekitError(f"--device {name}: no Apple MPS device is available; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise GenrekitError(f"--device {name}: unsupported device type (use {', '.join(DEVICES)} or cuda:N)")
    return dev


#: TrainConfig fields a resumed run may change: how long and where it runs, not what it learns.
RESUMABLE_CHANGES = ("epochs", "patience", "threads", "device")


def check_resumable(ckpt: Path, saved: dict, now: dict) -> None:
    """A one-line error when ``--resume`` would continue a run with other training settings
    (an optimizer whose state does not fit, another learning rate...): the result would be
    neither run. Settings in ``RESUMABLE_CHANGES`` may differ."""
    changed = [k for k in now if k in saved and k not in RESUMABLE_CHANGES and saved[k] != now[k]]
    if changed:
        k = changed[0]
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise GenrekitError(f"{ckpt}: cannot resume: the checkpoint was trained with {k}={saved[k]!r}, this run "
                            f"asks {k}={now[k]!r}{more}; drop --resume or use another --out")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; deterministic=True also forces deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(False)  # (this call imports torch._dynamo: ~2 s; skip it)


@torch.no_grad()
def predict_probs(net: nn.Module, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Softmax probabilities in eval mode, batched to bound memory; ``x`` stays on the CPU and
    each batch goes to the net's device."""
    net.eval()
    dev = next((p.device for p in net.parameters()), torch.device("cpu"))
    out = [torch.softmax(net(x[i:i + batch_size].to(dev)), dim=1).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


# Checkpoint (de)serialisation -------------------------------------------------------------------

def _flatten_optimizer(state: dict) -> tuple[dict, dict]:
    tensors, scalars = {}, {}
    for idx, st in state["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"opt.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state: dict = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, idx, k = key.split(".", 2)
            state.setdefault(int(idx), {})[k] = v
    for key, v in meta["scalars"].items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path: Path, net, best_state, optimizer, scheduler, generator, meta: dict) -> None:
    """One safetensors file, written to a temp name then os.replace'd (atomic on POSIX)."""
    from safetensors.torch import save_file

    tensors = {f"net.{k}": v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    tensors.update({f"best.{k}": v.detach().cpu().contiguous().clone() for k, v in best_state.items()})
    opt_t, opt_meta = _flatten_optimizer(optimizer.state_dict())
    tensors.update(opt_t)
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.generator"] = generator.get_state()
    dev = next((p.device for p in net.parameters()), torch.device("cpu"))
    if dev.type == "cuda":  # dropout on the GPU draws from the device's generator
        tensors["rng.cuda"] = torch.cuda.get_rng_state(dev)
    full = dict(meta, optimizer=opt_meta, scheduler=scheduler.state_dict() if scheduler else None)
    blob = json.dumps(full)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"genrekit_checkpoint": blob, DIGEST_KEY: tensors_digest(tensors, blob)})


#: Checkpoint metadata every resume reads; a checkpoint without them is damaged.
_CHECKPOINT_KEYS = ("optimizer", "history", "best_f1", "best_epoch", "bad_epochs", "epoch", "seconds")


def load_checkpoint(path: Path) -> tuple[dict, dict]:
    """(tensors, metadata) of a checkpoint, or one GenrekitError line saying it cannot be resumed
    (empty, truncated, damaged: checksum, JSON or keys), never a traceback."""
    from safetensors import safe_open

    def damaged(why: str) -> GenrekitError:
        return GenrekitError(f"{path}: cannot resume: the checkpoint is {why}; delete it to start over, "
                             "or drop --resume")

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except Exception as exc:
        raise damaged(f"empty, truncated or not a checkpoint ({type(exc).__name__})") from None
    blob = header.get("genrekit_checkpoint")
    if blob is None:
        raise damaged("not a genrekit checkpoint (no genrekit metadata)")
    try:
        check_digest(path, tensors, blob, header.get(DIGEST_KEY))
    except ModelFileError:
        raise damaged("damaged (its contents do not match the checksum saved with them)") from None
    try:
        meta = json.loads(blob)
    except ValueError:
        raise damaged("damaged (its metadata is not valid JSON)") from None
    if not isinstance(meta, dict) or any(k not in meta for k in _CHECKPOINT_KEYS):
        raise damaged("damaged (its metadata lacks the training state)")
    if not all(k in tensors for k in ("rng.torch", "rng.generator")):
        raise damaged("damaged (random-number state missing)")
    return tensors, meta


# The loop ----------------------------------------------------------------------------------------

def epoch_timing(epoch_s: float, mean_epoch_s: float, epochs_left: int, may_stop_early: bool) -> str:
    """``"2.1s, ETA 1:05"`` for an epoch's log line: this epoch's time and the time the epochs still
    allowed would take at this run's mean pace. With early stopping on, the run may end sooner, so
    the ETA is an upper bound ("ETA <= 1:05")."""
    from genrekit.units import format_duration

    text = f"{epoch_s:.1f}s"
    if epochs_left > 0:
        text += f", ETA {'<= ' if may_stop_early else ''}{format_duration(mean_epoch_s * epochs_left)}"
    return text


def write_history(history: list[dict], out_dir: Path) -> None:
    """history.json and history.csv (one row per epoch)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "history.json", json.dumps(history, indent=1))
    if history:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(history[0].keys()), lineterminator="\n")
        w.writeheader()
        w.writerows(history)
        write_text_atomic(out_dir / "history.csv", buf.getvalue())


def train(net: nn.Module, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
          labels: list[str], config: TrainConfig, out_dir: Path | None = None, resume: bool = False,
          log: Callable[[str], None] | None = print, keep_last: bool = False, progress: bool = False) -> TrainResult:
    """Train `net` in place; on return it holds the weights of the best validation macro-F1 epoch.

    ``progress``: a tqdm bar over each epoch's batches on stderr (for epochs long enough to wait
    for, like the CNN's on a CPU); every epoch's log line gives its time and the ETA of the run.

    Inputs must already be normalised float32 arrays. With out_dir, writes history.{csv,json} and
    a checkpoint after every epoch, and training_curve.png at the end; resume=True continues from
    out_dir's checkpoint (same config expected) instead of starting over.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed, config.deterministic)
    device = resolve_device(config.device)
    net.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic  # fixed input shapes: let cuDNN pick kernels
    xt = torch.as_tensor(np.ascontiguousarray(x_train, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y_train, dtype=np.int64))
    xv = torch.as_tensor(np.ascontiguousarray(x_val, dtype=np.float32))
    yv = np.asarray(y_val, dtype=np.int64)
    optimizer = make_optimizer(config.optimizer, net.parameters(), config.lr, config.weight_decay, config.momentum)
    scheduler = make_scheduler(config.scheduler, optimizer, config.epochs, config.step_size, config.gamma)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    gen = torch.Generator().manual_seed(config.seed)

    history: list[dict] = []
    best_f1, best_epoch, bad_epochs, start_epoch, elapsed = -1.0, 0, 0, 1, 0.0
    best_state = copy.deepcopy(net.state_dict())
    ckpt = Path(out_dir) / CHECKPOINT if out_dir else None
    if resume and ckpt is not None and ckpt.exists():
        tensors, meta = load_checkpoint(ckpt)
        check_resumable(ckpt, meta.get("config", {}), asdict(config))
        try:
            net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        except RuntimeError:
            raise GenrekitError(f"{ckpt}: cannot resume: the checkpoint holds a different network (other --model, "
                                "--hidden, --ensemble, --dropout or input features); drop --resume or use another "
                                "--out") from None
        best_state = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        try:
            optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
            if scheduler is not None and meta.get("scheduler"):
                scheduler.load_state_dict(meta["scheduler"])
            torch.set_rng_state(tensors["rng.torch"])
            gen.set_state(tensors["rng.generator"])
        except (KeyError, ValueError, TypeError, IndexError, RuntimeError, AttributeError) as exc:
            raise GenrekitError(f"{ckpt}: cannot resume: the checkpoint's optimizer or random state is damaged "
                                f"({one_line(exc)}); delete it to start over, or drop --resume") from None
        if device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], device)
        history = meta["history"]
        best_f1, best_epoch, bad_epochs = meta["best_f1"], meta["best_epoch"], meta["bad_epochs"]
        start_epoch, elapsed = meta["epoch"] + 1, meta["seconds"]
        if log:
            log(f"resuming from epoch {meta['epoch']} (best val macro-F1 {best_f1:.4f} at epoch {best_epoch})")
    elif resume and ckpt is not None and log:
        log(f"no checkpoint in {out_dir} (a finished run keeps one only with --keep-checkpoint): starting at epoch 1")
    stopped_early = bool(history) and config.patience > 0 and bad_epochs >= config.patience

    n = len(xt)
    run_t0, run_epochs = time.perf_counter(), 0  # this process's epochs only: a resumed run's ETA uses them
    for epoch in range(start_epoch, config.epochs + 1):
        if stopped_early:
            break
        t0 = time.perf_counter()
        net.train()
        perm = torch.randperm(n, generator=gen)
        total_loss, correct = 0.0, 0
        batches = range(0, n, config.batch_size)
        if progress:
            import sys

            from tqdm import tqdm

            batches = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", unit="batch", leave=False,
                           file=sys.stderr, dynamic_ncols=True)
        for i in batches:
            idx = perm[i:i + config.batch_size]
            if len(idx) < 2 and any(isinstance(m, nn.BatchNorm2d) for m in net.modules()):
                continue  # BatchNorm cannot train on a batch of one
            xb, yb = xt[idx], yt[idx]
            if config.input_noise > 0:  # drawn on the CPU: the same noise on every device
                xb = xb + config.input_noise * torch.randn(xb.shape, generator=gen)
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            if hasattr(net, "member_logits"):  # ensemble: every member gets its own loss
                member = net.member_logits(xb)
                loss = torch.stack([loss_fn(m, yb) for m in member]).mean()
                logits = torch.log_softmax(member, -1).exp().mean(0)
            else:
                logits = net(xb)
                loss = loss_fn(logits, yb)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        probs = predict_probs(net, xv)
        val_loss = float(nn.functional.cross_entropy(torch.from_numpy(np.log(np.clip(probs, 1e-12, 1))),
                                                     torch.from_numpy(yv), reduction="mean")) if len(yv) else 0.0
        m = classification_metrics(yv, probs.argmax(1), labels)
        lr_now = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(m["macro_f1"])
            else:
                scheduler.step()
        improved = m["macro_f1"] > best_f1
        if improved:
            best_f1, best_epoch, bad_epochs = m["macro_f1"], epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            bad_epochs += 1
        elapsed += time.perf_counter() - t0
        row = {"epoch": epoch, "train_loss": total_loss / max(1, n), "train_accuracy": correct / max(1, n),
               "val_loss": val_loss, "val_accuracy": m["accuracy"], "val_macro_f1": m["macro_f1"],
               "lr": lr_now, "seconds": round(elapsed, 3)}
        history.append(row)
        stopped_early = config.patience > 0 and bad_epochs >= config.patience
        if out_dir is not None:
            write_history(history, Path(out_dir))
            save_checkpoint(ckpt, net, best_state, optimizer, scheduler, gen,
                            {"epoch": epoch, "history": history, "best_f1": best_f1, "best_epoch": best_epoch,
                             "bad_epochs": bad_epochs, "seconds": elapsed, "config": asdict(config)})
        run_epochs += 1
        if log:
            log(f"epoch {epoch:3d}/{config.epochs}  loss {row['train_loss']:.4f}  acc {row['train_accuracy']:.3f}  "
                f"val_loss {val_loss:.4f}  val_acc {m['accuracy']:.3f}  val_f1 {m['macro_f1']:.3f}  "
                + epoch_timing(time.perf_counter() - t0, (time.perf_counter() - run_t0) / run_epochs,
                               0 if stopped_early else config.epochs - epoch, config.patience > 0)
                + ("  *" if improved else ""))
    if not keep_last:
        net.load_state_dict(best_state)
    net.cpu().eval()
    if out_dir is not None and history:
        from genrekit.plots import plot_training_curve

        plot_training_curve(history, Path(out_dir) / "training_curve.png",
                            title=f"best val macro-F1 {best_f1:.3f} at epoch {best_epoch}")
    return TrainResult(history, best_epoch, best_f1, elapsed, stopped_early, asdict(config))


# One full run on a DataBundle ----------------------------------------------------------------------

def normalisation_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean/std for vectors; per-mel-band (over segments and frames) for 2-D inputs,
    which keeps the CNN's time axis shift-invariant. std is floored to avoid division by ~0."""
    x = np.asarray(x, dtype=np.float64)
    axes = (0,) if x.ndim == 2 else (0,) + tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)[0]
    std = x.std(axis=axes, keepdims=True)[0]
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def evaluate_split(model, split, labels: list[str]) -> dict:
    """Segment- (row-) and, when rows group into tracks, track-level metrics of a GenreModel."""
    from genrekit.evaluation import aggregate_tracks, classification_metrics

    probs = model.segment_probs(split.X) if len(split) else np.zeros((0, len(labels)), np.float32)
    out = {"segment": classification_metrics(split.y, probs.argmax(1), labels)}
    if len(split) and split.n_tracks < len(split):
        tp, ty, _ = aggregate_tracks(probs, split.y, split.groups)
        out["track"] = classification_metrics(ty, tp.argmax(1), labels)
    return out


def variance_columns(spec: dict) -> list[int]:
    """Indices of `*_var` features (per-clip variances span orders of magnitude: log them)."""
    names = spec.get("feature_names")
    if names is None and spec.get("kind") == "mfcc_stats":
        from genrekit.features import spec_from_dict

        names = spec_from_dict(spec).feature_names()
    return [i for i, n in enumerate(names or []) if n.endswith("_var")]


def fit(bundle, model_config: dict, config: TrainConfig, out_dir: Path | None, resume: bool = False,
        log: Callable[[str], None] | None = print, plots: bool = True, refit: bool = False,
        keep_checkpoint: bool = False, progress: bool = False):
    """Train a model_config net on bundle's train split (selecting on val), score val and test.

    Returns (TorchGenreModel, metrics). With out_dir, writes model.safetensors, metrics.json,
    {val,test}[_track]_metrics.json + confusion PNGs, history.{csv,json} and training_curve.png.
    The resume checkpoint (weights, best weights and optimizer state: ~3x the model, 84 MB for
    the CNN) is deleted once the model file is written, unless ``keep_checkpoint`` (to train
    longer later with ``resume=True`` and more epochs).
    metrics.json has val/test (the data's row unit), and val_track/test_track when rows are
    segments of tracks (or are tracks themselves).
    """
    from genrekit.evaluation import summary, write_metrics
    from genrekit.models.modelfile import write_json_atomic
    from genrekit.models.notebook import TorchGenreModel, build_model, log_columns, standardise

    tr, va, te = bundle.splits["train"], bundle.splits["val"], bundle.splits["test"]
    if len(tr) == 0 or len(va) == 0:
        from genrekit.datasets import DatasetError

        raise DatasetError(f"need train and validation rows, got train {len(tr)}, val {len(va)}")
    cfg = dict(model_config, input_shape=list(tr.X.shape[1:]), n_classes=len(bundle.labels))
    if cfg.pop("log_var", True) and tr.X.ndim == 2:
        cfg["log_columns"] = variance_columns(bundle.spec)
    mean, std = normalisation_stats(log_columns(tr.X, cfg.get("log_columns")))
    norm = lambda x: standardise(x, mean, std, cfg.get("log_columns"))  # noqa: E731
    seed_everything(config.seed, config.deterministic)
    net = build_model(cfg)
    result = train(net, norm(tr.X), tr.y, norm(va.X), va.y, bundle.labels, config,
                   out_dir=out_dir, resume=resume, log=log, progress=progress)
    info = {"training": asdict(config), "device": str(resolve_device(config.device)), "data": {"kind": bundle.kind, "unit": bundle.unit,
            "rows": {k: len(s) for k, s in bundle.splits.items()},
            "tracks": bundle.track_counts()},
            "best_epoch": result.best_epoch, "train_seconds": round(result.seconds, 2)}
    selection_val = None
    if refit:
        # settings and epoch count were chosen on val; now learn from train+val with them
        selection_val = evaluate_split(
            TorchGenreModel(net, cfg, bundle.labels, bundle.spec, mean, std), va, bundle.labels)
        refit_cfg = TrainConfig.from_dict(dict(asdict(config), epochs=max(1, result.best_epoch), patience=0))
        x_all = np.concatenate([tr.X, va.X])
        y_all = np.concatenate([tr.y, va.y])
        seed_everything(config.seed, config.deterministic)
        net = build_model(cfg)
        if log:
            log(f"refit on train+val ({len(y_all)} rows) for {refit_cfg.epochs} epochs")
        r2 = train(net, norm(x_all), y_all, norm(va.X[:1]), va.y[:1], bundle.labels, refit_cfg,
                   out_dir=None, log=None, keep_last=True)
        info["refit"] = {"epochs": refit_cfg.epochs, "rows": int(len(y_all)), "seconds": round(r2.seconds, 2)}
    model = TorchGenreModel(net, cfg, bundle.labels, bundle.spec, mean, std, {}, info)
    metrics: dict = {"unit": bundle.unit, "best_epoch": result.best_epoch,
                     "best_val_macro_f1": result.best_val_macro_f1, "epochs_run": len(result.history),
                     "stopped_early": result.stopped_early, "seconds": round(result.seconds, 2)}
    full: dict = {}
    for name, split in (("val", va), ("test", te)):
        if len(split) == 0:
            continue
        ev = selection_val if (name == "val" and selection_val) else evaluate_split(model, split, bundle.labels)
        metrics[name] = summary(ev["segment"])
        full[name] = ev["segment"]
        if "track" in ev:
            metrics[f"{name}_track"] = summary(ev["track"])
            full[f"{name}_track"] = ev["track"]
        elif bundle.unit == "track":
            metrics[f"{name}_track"] = summary(ev["segment"])
    if refit:
        metrics["refit"] = info["refit"]
    model.metrics.update(metrics)
    if out_dir is not None:
        out_dir = Path(out_dir)
        for name, m in full.items():
            write_metrics(m, out_dir, f"{name}_metrics", plot=plots)
        write_json_atomic(out_dir / "metrics.json", metrics)
        model.save(out_dir / "model.safetensors")
        if not keep_checkpoint:
            (out_dir / CHECKPOINT).unlink(missing_ok=True)
    return model, metrics
