"""`genrekit train`: your own genres on the pretrained backbones, or an FNN / CNN from scratch.

    genrekit train --model head --data MUSIC/ --out runs/mine          # <label>/<audio files>
    genrekit train --model head --manifest songs.csv --open-set --out runs/mine
    genrekit train --model fnn --data ../shared/data/seed-mfcc --out runs/fnn
    genrekit train --model cnn --data MUSIC/ --splits SPLITS/ --out runs/cnn

--model head (``genrekit.heads.training``) fits a head over frozen pretrained backbones (musicnn +
EfficientAT mn04, the ``musicnn`` built-in's family; ``--backbone mn04``: EfficientAT alone, the
default's), regularisation chosen by grouped cross-validation, and writes
OUT/model.safetensors (every command reads it); embeddings are cached per file, so a rerun after
adding songs extracts only the new ones.

Writes OUT/model.safetensors, OUT/metrics.json (val/test and val_track/test_track), per-split
metrics JSON + confusion PNGs, history.{csv,json}, training_curve.png and data_summary.json.
OUT/checkpoint.safetensors is written after every epoch (so --resume can continue an interrupted
run) and deleted after success unless --keep-checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genrekit.cli.argtypes import (
    fraction,
    hidden_sizes,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from genrekit.errors import printable

FEATURE_KINDS = ("mfcc", "mel", "mfcc_stats")
# Copies of models.ACTIVATIONS / training.OPTIMIZERS / SCHEDULERS (a test keeps them equal): building
# the parser must not import torch, or `genrekit --help` takes seconds.
ACTIVATIONS = ("elu", "gelu", "leaky_relu", "relu", "selu", "sigmoid", "silu", "softplus", "tanh")
OPTIMIZERS = ("sgd", "adam", "adamw", "adamax", "adagrad", "rmsprop", "nadam", "radam")
SCHEDULERS = ("none", "step", "cosine", "plateau", "exponential")


def add_data_args(p: argparse.ArgumentParser, data_required: bool = True) -> None:
    """Options shared by train / compare / sweep: where the data is and how to featurise it."""
    p.add_argument("--data", required=data_required, help="audio folder <genre>/<files>, features .csv, notebook "
                   "arrays folder (train/X.npy) or musicnn taggram .npz / folder")
    p.add_argument("--splits", help="folder with {train,valid,test}_filtered.txt split lists")
    p.add_argument("--features", choices=FEATURE_KINDS,
                   help="audio folders: mfcc (13 mean+std per segment), mel (log-mel segments), "
                        "mfcc_stats (whole clip); default mfcc for fnn, mel for cnn")
    p.add_argument("--segment-seconds", type=positive_float,
                   help="segment length (default: the spec's; in compare, for mel features only)")
    p.add_argument("--hop-seconds", type=positive_float, help="hop between segments (default: the spec's)")
    p.add_argument("--n-mels", type=positive_int, help="mel bands (default: the spec's)")
    p.add_argument("--columns", choices=("mfcc", "all"), default="mfcc",
                   help="CSV tables: the 40 MFCC mean/var columns (default; also computable from audio) or all")
    p.add_argument("--val-fraction", type=fraction, default=0.15, help="without split lists (default 0.15)")
    p.add_argument("--test-fraction", type=fraction, default=0.15, help="without split lists (default 0.15)")
    p.add_argument("--max-per-label", type=positive_int, help="use at most N files per genre (quick runs)")
    p.add_argument("--workers", type=non_negative_int, default=0, help="feature extraction processes (0 = auto)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines or progress bars")


def add_train_args(p: argparse.ArgumentParser) -> None:
    """Model and optimisation options (defaults: the tuned FNN recipe, see docs/results.md)."""
    p.add_argument("--hidden", type=hidden_sizes, help="fnn hidden sizes, comma separated (default 256,64)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu")
    p.add_argument("--dropout", type=fraction, help="default 0.5 fnn, 0.3 cnn")
    p.add_argument("--ensemble", type=positive_int, default=1, help="train K nets side by side and average them")
    p.add_argument("--epochs", type=positive_int, help="default 150 fnn, 30 cnn")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw")
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--weight-decay", type=non_negative_float, default=1e-3)
    p.add_argument("--momentum", type=fraction, default=0.9, help="SGD / RMSprop momentum")
    p.add_argument("--scheduler", choices=SCHEDULERS, default="none")
    p.add_argument("--step-size", type=positive_int, default=30, help="StepLR period in epochs")
    p.add_argument("--gamma", type=positive_float, default=0.1, help="StepLR factor")
    p.add_argument("--patience", type=non_negative_int, help="early stopping patience in epochs, 0 = off (default 40 fnn, 10 cnn)")
    p.add_argument("--label-smoothing", type=fraction, default=0.1)
    p.add_argument("--input-noise", type=non_negative_float, help="Gaussian noise std on standardised fnn inputs (default 0.2)")
    p.add_argument("--refit", action="store_true",
                   help="after choosing the epoch count on val, retrain on train+val for that many epochs")
    p.add_argument("--no-log-var", action="store_true", help="do not log-transform *_var table columns")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deterministic", action="store_true", help="deterministic torch kernels")
    p.add_argument("--threads", type=non_negative_int, default=0, help="torch threads (0 = auto: 1 for fnn, whose small matmuls lose to threading overhead)")
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="auto (a CUDA GPU if torch sees one, else the CPU), cpu, cuda, cuda:N or mps; the model "
                        "file is the same either way and predicts on the CPU")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train your own genres (head) or an FNN / CNN classifier",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("head", "fnn", "cnn"), required=True,
                   help="head: your labels on the default model's pretrained backbones (needs few songs); "
                        "fnn / cnn: the notebook's networks trained from scratch")
    add_data_args(p, data_required=False)
    add_train_args(p)
    h = p.add_argument_group("--model head")
    h.add_argument("--manifest", help="CSV with the columns input,genre[,group] instead of --data")
    h.add_argument("--open-set", action="store_true",
                   help="learn an 'other' answer from songs outside your labels (a label named 'other', or --other-folder)")
    h.add_argument("--other-folder", help="a folder of music outside your labels (implies --open-set)")
    h.add_argument("--max-false-other", type=fraction, default=0.15,
                   help="open set: at most this share of your labels' songs may be answered 'other' on the other "
                        "folds (default 0.15); new songs see a little more, so leave a margin below the rate you "
                        "can accept (the default model uses 0.13 for 15%%)")
    h.add_argument("--c-grid", type=_c_grid, default=None,
                   help="regularisation values tried by grouped CV, comma separated (default 0.01,0.03,0.1)")
    h.add_argument("--cv-folds", type=non_negative_int, default=5,
                   help="folds of whole groups (leave one group out when there are fewer groups, or with 0; default 5)")
    h.add_argument("--class-weight", choices=("balanced", "none"), default="balanced",
                   help="balanced: each label weighs the same whatever its song count (default); none: each song once")
    h.add_argument("--zero-shot-weight", type=non_negative_float, default=0.0,
                   help="weight of mn04's own vote among your labels, when each label names an AudioSet genre "
                        "class (blues, salsa, afrobeat, ...); 0 = off (default)")
    h.add_argument("--always-fit", action="append", default=[], metavar="GROUP",
                   help="songs of this group are in every fit and never scored: a reference collection such as GTZAN "
                        "beside your own songs; GROUP as the manifest's group column, the album tag ('Artist - Album'), "
                        "the artist tag or the sub-folder below the label names it (repeatable)")
    h.add_argument("--name", help="the model's name (default: 'head on <folder>')")
    h.add_argument("--backbone", choices=("musicnn+mn04", "mn04"), default="musicnn+mn04",
                   help="musicnn+mn04: both backbones, 3 s timeline segments and MSD tags (default); mn04: "
                        "EfficientAT alone, as the built-in default: several times faster, 10 s segments")
    h.add_argument("--efficientat-weights", help="EfficientAT mn04 weights file (default: the usual lookup)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--keep-checkpoint", action="store_true",
                   help="keep OUT/checkpoint.safetensors after a successful run (deleted by default; with it, "
                        "--resume --epochs N can train a finished run longer)")
    p.add_argument("--restarts", type=positive_int, default=1,
                   help="train with seeds SEED..SEED+K-1 and keep the run with the best validation macro-F1 "
                        "(runs kept in OUT/restarts/, all scores in OUT/restarts.json)")
    p.set_defaults(func=run)


def make_spec(args, arch: str):
    """Feature spec for audio folders from --features and the spec overrides."""
    from genrekit.features import LogMelSpec, MfccSegmentSpec, MfccStatsSpec

    kind = args.features or ("mel" if arch == "cnn" else "mfcc")
    cls = {"mfcc": MfccSegmentSpec, "mel": LogMelSpec, "mfcc_stats": MfccStatsSpec}[kind]
    kw = {}
    if kind == "mel" or (kind == "mfcc" and not getattr(args, "mel_only_overrides", False)):
        if args.segment_seconds:
            kw["segment_seconds"] = args.segment_seconds
        if args.hop_seconds:
            kw["hop_seconds"] = args.hop_seconds
        if args.n_mels:
            kw["n_mels"] = args.n_mels
    return cls(**kw)


def check_options(args, archs: list[tuple[str, str | None]]) -> None:
    """Refuse what cannot work before any folder is made or feature extracted: a --device that is
    not there, a CNN asked to read vectors. ``archs``: the (arch, --features) pairs to be trained."""
    from genrekit.datasets import detect_kind
    from genrekit.errors import GenrekitError

    if getattr(args, "device", None):
        from genrekit.training import resolve_device

        resolve_device(args.device)
    kind = detect_kind(args.data)
    for arch, feats in archs:
        if arch != "cnn":
            continue
        if kind == "audio" and feats not in (None, "mel"):
            raise GenrekitError(f"--features {feats}: the cnn reads 2-D log-mel segments; use --features mel "
                                "(or --model fnn for MFCC vectors)")
        if kind in ("table", "taggram"):
            raise GenrekitError(f"{args.data}: the cnn reads 2-D log-mel segments of audio, this data holds "
                                "feature vectors; use --model fnn, or point --data at an audio folder")


def load_bundle(args, arch: str, log=print):
    """The DataBundle for --data, with a printed summary of skipped/missing files."""
    from genrekit.datasets import detect_kind, load_data
    from genrekit.errors import GenrekitError

    spec = make_spec(args, arch) if detect_kind(args.data) == "audio" else None
    bundle = load_data(args.data, args.splits, spec, columns=args.columns, seed=args.seed,
                       val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                       workers=args.workers, use_cache=not args.no_cache, progress=not args.quiet,
                       max_per_label=args.max_per_label)
    report_bundle(bundle, log)
    train_x = bundle.splits["train"].X
    if arch == "cnn" and train_x.ndim != 3:
        raise GenrekitError(f"{args.data}: the cnn reads 2-D log-mel segments, this data holds "
                            f"{train_x.shape[1:]} vectors; use --model fnn")
    return bundle


def report_bundle(bundle, log=print) -> None:
    if bundle.track_ids:
        rows = ", ".join(f"{k} {len(s)} rows/{s.n_tracks} tracks" for k, s in bundle.splits.items())
    else:  # e.g. the notebook's arrays: segments without track ids, so no track count to give
        rows = ", ".join(f"{k} {len(s)} {bundle.unit}s" for k, s in bundle.splits.items()) + " (no track ids)"
    log(f"data: {bundle.kind}, {len(bundle.labels)} labels, {rows}")
    for note in bundle.notes:
        log(f"note: {note}")
    if bundle.skipped:
        print(f"skipped {len(bundle.skipped)} inputs (unreadable, missing, too short or silent):", file=sys.stderr)
        for s in bundle.skipped[:20]:
            reason = str(s["reason"])  # decoding errors already start with the path
            line = f"  {reason}" if reason.startswith(str(s["path"])) else f"  {s['path']}: {reason}"
            print(printable(line), file=sys.stderr)
        if len(bundle.skipped) > 20:
            print(f"  ... and {len(bundle.skipped) - 20} more (see data_summary.json)", file=sys.stderr)


def model_config(args, arch: str) -> dict:
    from genrekit.models.notebook import default_config

    cfg = default_config(arch)
    cfg["activation"] = args.activation
    if arch == "fnn":
        cfg["hidden"] = list(args.hidden) if args.hidden else [256, 64]
        cfg["dropout"] = 0.5 if args.dropout is None else args.dropout
    elif args.dropout is not None:
        cfg["dropout"] = args.dropout
    if args.ensemble > 1:
        cfg["ensemble"] = args.ensemble
    cfg["log_var"] = not args.no_log_var
    return cfg


def train_config(args, arch: str):
    from genrekit.training import TrainConfig

    fnn = arch == "fnn"
    return TrainConfig(
        epochs=args.epochs or (150 if fnn else 30), batch_size=args.batch_size, optimizer=args.optimizer,
        lr=args.lr, weight_decay=args.weight_decay, momentum=args.momentum, scheduler=args.scheduler,
        step_size=args.step_size, gamma=args.gamma,
        patience=(40 if fnn else 10) if args.patience is None else args.patience,
        label_smoothing=args.label_smoothing,
        input_noise=(0.2 if fnn else 0.0) if args.input_noise is None else args.input_noise,
        seed=args.seed, deterministic=args.deterministic,
        threads=args.threads or (1 if fnn else 0), device=args.device)


def _c_grid(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        vals = ()
    if not vals or any(not v > 0 for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: positive numbers separated by commas, e.g. 0.01,0.03,0.1")
    return vals


def run_head(args) -> int:
    """--model head: see ``genrekit.heads.training``."""
    from genrekit.heads.training import C_GRID, HeadOptions, train_head

    opt = HeadOptions(data=args.data, manifest=args.manifest, out=args.out,
                      open_set=bool(args.open_set or args.other_folder), other_folder=args.other_folder,
                      Cs=args.c_grid or C_GRID, folds=args.cv_folds and max(2, args.cv_folds),
                      max_false_other=args.max_false_other, use_cache=not args.no_cache, progress=not args.quiet,
                      audioset_weights=args.efficientat_weights, class_weight=args.class_weight,
                      zero_shot_weight=args.zero_shot_weight, always_fit=tuple(args.always_fit), name=args.name,
                      backbone=args.backbone)
    train_head(opt, log=(lambda *_: None) if args.quiet else print)
    return 0


def run(args) -> int:
    if args.model == "head":
        return run_head(args)
    from genrekit.errors import GenrekitError
    from genrekit.models.modelfile import write_json_atomic
    from genrekit.training import fit

    if args.manifest or args.open_set or args.other_folder:
        raise GenrekitError(f"--manifest, --open-set and --other-folder are options of --model head, not --model {args.model}")
    if not args.data:
        raise GenrekitError(f"genrekit train --model {args.model}: --data is required")
    check_options(args, [(args.model, args.features)])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = (lambda *_: None) if args.quiet else print
    bundle = load_bundle(args, args.model, print)
    write_json_atomic(out / "data_summary.json", bundle.summary())
    if args.restarts > 1:
        metrics = _restarts(args, bundle, out, log)
    else:
        _, metrics = fit(bundle, model_config(args, args.model), train_config(args, args.model), out,
                         resume=args.resume, log=log, refit=args.refit, keep_checkpoint=args.keep_checkpoint,
                         progress=not args.quiet and sys.stderr.isatty())
    for k in ("val", "test", "val_track", "test_track"):
        if k in metrics:
            print(f"{k:10s} accuracy {metrics[k]['accuracy']:.4f}  macro-F1 {metrics[k]['macro_f1']:.4f}  (n={metrics[k]['n']})")
    print(f"best epoch {metrics['best_epoch']}; wrote {out / 'model.safetensors'} and {out / 'metrics.json'}")
    return 0


def _restarts(args, bundle, out: Path, log) -> dict:
    """Several seeds; the best validation macro-F1 wins (test scores are recorded, never used)."""
    import copy
    import shutil

    from genrekit.models.modelfile import write_json_atomic
    from genrekit.training import fit

    runs = []
    for k in range(args.restarts):
        a = copy.copy(args)
        a.seed = args.seed + k
        run_dir = out / "restarts" / f"seed-{a.seed}"
        _, m = fit(bundle, model_config(a, args.model), train_config(a, args.model), run_dir,
                   resume=args.resume, log=log, refit=args.refit, keep_checkpoint=args.keep_checkpoint,
                   progress=not args.quiet and sys.stderr.isatty())
        runs.append({"seed": a.seed, "dir": str(run_dir), **m})
        print(f"seed {a.seed}: val macro-F1 {m['val']['macro_f1']:.4f}")
    best = max(runs, key=lambda r: r["val"]["macro_f1"])
    for f in Path(best["dir"]).iterdir():
        if f.is_file() and f.name != "checkpoint.safetensors":
            shutil.copy2(f, out / f.name)
    metrics = dict(best, restarts=[{k: r[k] for k in ("seed", "val", "test") if k in r} for r in runs])
    metrics.pop("dir")
    write_json_atomic(out / "restarts.json", metrics["restarts"])
    write_json_atomic(out / "metrics.json", metrics)
    print(f"kept seed {best['seed']} (best validation macro-F1)")
    return metrics
