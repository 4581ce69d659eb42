"""`genrekit sweep`: a grid over optimizers, activations and LR schedulers (the notebook's study).

    genrekit sweep --model fnn --data ../shared/data/seed-mfcc \\
        --optimizers sgd,adam,adamw,adamax,adagrad,rmsprop --activations relu,tanh,elu \\
        --schedulers none,step,cosine,plateau --out runs/sweep

Every other option is held at its `genrekit train` value. Writes OUT/sweep.md (accuracy, macro-F1,
best epoch and seconds per combination, best first) and OUT/sweep.json; each run's history and
model go to OUT/runs/<optimizer>-<activation>-<scheduler>/ unless --no-save-runs.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import time
from pathlib import Path


def add_parser(subparsers) -> None:
    from genrekit.cli.train import add_data_args, add_train_args

    p = subparsers.add_parser("sweep", help="grid over optimizer / activation / scheduler",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("fnn", "cnn"), default="fnn")
    p.add_argument("--optimizers", default="sgd,adam,adamw,adamax,adagrad,rmsprop")
    p.add_argument("--activations", default="relu")
    p.add_argument("--schedulers", default="none")
    p.add_argument("--lrs", help="comma-separated learning rates to sweep too (default: --lr)")
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--no-save-runs", action="store_true", help="keep only the tables")
    p.add_argument("--out", required=True)
    p.set_defaults(func=run)


def parse_grid(args) -> tuple[list[str], list[str], list[str], list[float]]:
    """(optimizers, activations, schedulers, learning rates) from the comma lists; an unknown name
    or a learning rate that is not a positive number is a one-line error naming it."""
    from genrekit.cli.train import ACTIVATIONS, OPTIMIZERS, SCHEDULERS
    from genrekit.errors import GenrekitError

    axes = []
    for flag, text, allowed in (("--optimizers", args.optimizers, OPTIMIZERS),
                                ("--activations", args.activations, ACTIVATIONS),
                                ("--schedulers", args.schedulers, SCHEDULERS)):
        names = [n.strip().lower() for n in text.split(",") if n.strip()]
        bad = [n for n in names if n not in allowed]
        if bad or not names:
            raise GenrekitError(f"{flag} {text}: unknown {bad[0] if bad else 'empty list'!s}; choose from "
                                f"{', '.join(allowed)}")
        axes.append(names)
    lrs = [args.lr]
    if args.lrs:
        try:
            lrs = [float(x) for x in args.lrs.split(",")]
        except ValueError:
            raise GenrekitError(f"--lrs {args.lrs}: use comma-separated numbers, e.g. 1e-3,3e-4") from None
        if not all(lr > 0 and lr < float("inf") for lr in lrs):
            raise GenrekitError(f"--lrs {args.lrs}: learning rates must be positive numbers")
    return axes[0], axes[1], axes[2], lrs


def run(args) -> int:
    from genrekit.cli.compare import markdown_table
    from genrekit.cli.train import check_options, load_bundle, model_config, train_config
    from genrekit.models.modelfile import write_json_atomic, write_text_atomic
    from genrekit.training import fit

    grid_axes = parse_grid(args)  # every value checked before hours of training start
    check_options(args, [(args.model, args.features)])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(args, args.model, print)
    lrs = grid_axes[3]
    grid = list(itertools.product(*grid_axes))
    rows = []
    unit_track = bundle.grouped or bundle.unit == "track"
    for i, (opt, act, sch, lr) in enumerate(grid, 1):
        a = copy.copy(args)
        a.optimizer, a.activation, a.scheduler, a.lr = opt, act, sch, lr
        name = f"{opt}-{act}-{sch}" + (f"-lr{lr:g}" if len(lrs) > 1 else "")
        t0 = time.perf_counter()
        _, m = fit(bundle, model_config(a, args.model), train_config(a, args.model),
                   None if args.no_save_runs else out / "runs" / name, log=None, plots=False)
        row = {"optimizer": opt, "activation": act, "scheduler": sch, "lr": lr,
               "accuracy": m["test"]["accuracy"] if "test" in m else None,
               "macro_f1": m["test"]["macro_f1"] if "test" in m else None,
               "val_macro_f1": m["val"]["macro_f1"], "best_epoch": m["best_epoch"],
               "epochs_run": m["epochs_run"], "seconds": round(time.perf_counter() - t0, 1)}
        if unit_track and "test_track" in m:
            row["track_accuracy"] = m["test_track"]["accuracy"]
            row["track_macro_f1"] = m["test_track"]["macro_f1"]
        rows.append(row)
        test = "no test split" if row["accuracy"] is None else \
            f"test acc {row['accuracy']:.3f}  F1 {row['macro_f1']:.3f}"
        print(f"[{i}/{len(grid)}] {name}: val F1 {row['val_macro_f1']:.3f}  {test}  best epoch {row['best_epoch']}  "
              f"{row['seconds']} s")
        write_json_atomic(out / "sweep.json", rows)
    rows_sorted = sorted(rows, key=lambda r: -r["val_macro_f1"])
    cols = [("optimizer", "optimizer"), ("activation", "activation"), ("scheduler", "scheduler"), ("lr", "lr"),
            ("test accuracy", "accuracy"), ("test macro-F1", "macro_f1"), ("val macro-F1", "val_macro_f1"),
            ("best epoch", "best_epoch"), ("seconds", "seconds")]
    if unit_track:
        cols[6:6] = [("track accuracy", "track_accuracy"), ("track macro-F1", "track_macro_f1")]
    md = markdown_table(rows_sorted, cols)
    md += "\nSorted by validation macro-F1 (the selection criterion); test columns are for reading only.\n"
    write_text_atomic(out / "sweep.md", md)
    print(md)
    return 0
