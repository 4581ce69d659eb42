"""Investigation (retired after this commit): the default's CV with mn04 windows every HOP seconds.

    HOP=5 python scripts/cv_mn04_hop.py     # HOP=10: the shipped windows

The windows stay 10 s long; a 5 s hop gives each track about twice as many views of mn04 (twice
the network time). Runs ``scripts/train_default_model.py --cv-only`` with the window spec's hop
replaced, so the extraction (cached under its own identity), the CV and the protocol are the
default's.
"""

import dataclasses
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from genrekit.models import audioset_head as H  # noqa: E402

HOP = float(os.environ.get("HOP", "5"))
_base = H.AudioSetWindowSpec
H.AudioSetWindowSpec = lambda **kw: dataclasses.replace(_base(**kw), hop_seconds=HOP)  # noqa: E731

import train_default_model as T  # noqa: E402

if __name__ == "__main__":
    sys.exit(T.main(["--cv-only"]))
