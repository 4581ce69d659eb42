"""The AudioSet part of the default model: EfficientAT mn04 over 10 s windows of a track.

Why a second backbone: musicnn learnt its tags from the Million Song Dataset (mostly 2000s Western
releases); mn04 learnt 527 AudioSet classes from two million YouTube clips, the recordings our
users have, including 49 music genres (salsa, flamenco, afrobeat, music of Bollywood, ...) that
musicnn cannot name. Their errors differ, so the default model reads both.

How it is aligned with musicnn's patches: the default model works on musicnn's 3 s patches, 1 s
apart, collected block by block (``prediction.Classifier``). mn04 runs on a 10 s window starting at
every ``stride``-th patch (the window runs to the signal's end when less is left), and its
outputs are stored in that patch's row; the rows in between are NaN. A track's AudioSet features
are the mean over the rows that ran. The default model's spec (``context_seconds``,
``context_stride``) makes block-wise prediction cut only at multiples of the stride and keep a
window's 10 s after every kept patch, so a long file gets the same windows as a short one.

Labels: AudioSet's class names (Google, CC BY 4.0) as shipped with the weights' MIT-licensed
upstream (``backbones/assets``).
"""

from __future__ import annotations

import numpy as np

#: Row layout of one window's outputs: 527 logits, then the 384-d pooled embedding.
N_LOGITS = 527
N_EMBED = 384
ROW = N_LOGITS + N_EMBED

#: AudioSet classes that name a style of music (the ontology's "Music genre" branch, without
#: Beatboxing, Music for children, Vocal music and A capella, which are not styles a song is filed under).
GENRE_CLASSES: tuple[int, ...] = (216, 217, *range(219, 252), 253, *range(256, 266))
#: The AudioSet class that carries each GTZAN genre's name (zero-shot mapping).
ZERO_SHOT_TEN: dict[str, int] = {"blues": 251, "classical": 237, "country": 229, "disco": 236, "hiphop": 217,
                                 "jazz": 235, "metal": 220, "pop": 216, "reggae": 228, "rock": 219}
#: The music part of the ontology (Music, instruments, genres, moods): the ``audioset`` tags vocabulary.
MUSIC_CLASSES: tuple[int, ...] = tuple(range(137, 283))
#: The tags a user sees: the music branch without its two roots ("Music", "Musical instrument"),
#: which every song gets and which would crowd out the instruments, genres and moods that tell songs apart.
TAG_CLASSES: tuple[int, ...] = tuple(i for i in MUSIC_CLASSES if i not in (137, 138))
#: Below this many seconds a window's outputs are not used unless it is the track's only one.
MIN_WINDOW_SECONDS = 2.0


def labels() -> tuple[str, ...]:
    from genrekit.backbones.efficientat import AUDIOSET_LABELS

    return tuple(AUDIOSET_LABELS)


def window_rows(y: np.ndarray, sample_rate: int, starts_s: np.ndarray, *, window_s: float = 10.0,
                stride: int = 10, weights: str | None = None) -> np.ndarray:
    """[n, ROW] float32 mn04 outputs for a signal ``y`` at ``sample_rate`` and its n patch starts
    (seconds, relative to ``y``): row i holds the outputs of the window [start_i, start_i +
    window_s) when i is a multiple of ``stride``, else NaN. All windows go through the network
    in one batch per length (:func:`run_windows`)."""
    from genrekit.audio import resample
    from genrekit.backbones.efficientat import SR

    starts_s = np.asarray(starts_s, np.float64)
    out = np.full((len(starts_s), ROW), np.nan, np.float32)
    if len(starts_s) == 0:
        return out
    y32 = resample(np.asarray(y, np.float32), sample_rate, SR)
    win = int(round(window_s * SR))
    picked = []
    for i in range(0, len(starts_s), max(1, stride)):
        a = int(round(starts_s[i] * SR))
        seg = y32[a : a + win]
        if len(seg) >= MIN_WINDOW_SECONDS * SR or (not picked and len(seg) > 1024):
            picked.append((i, seg))
    if picked:
        out[[i for i, _ in picked]] = run_windows([s for _, s in picked], weights)
    return out


#: Windows per network run: the network's activations, not a block's length, set peak memory
#: (a 30 s clip's three windows go in one run, a 300 s block's thirty in four).
WINDOWS_PER_RUN = 8


def run_windows(segs_32k: list[np.ndarray], weights: str | None = None) -> np.ndarray:
    """[len(segs_32k), ROW] float32 mn04 outputs (logits, embedding) of mono 32 kHz windows:
    windows of one length go through the network together, at most ``WINDOWS_PER_RUN`` at a
    time, run by ``runners.backbone_runner("efficientat_mn04", weights)`` (ONNX Runtime, or torch
    with GENREKIT_ENGINE=torch). A window too short for mn04's front end (one FFT frame, 1024
    samples) stays NaN."""
    from genrekit.backbones.efficientat import NAME, mel_frontend
    from genrekit.backbones.runners import backbone_runner

    out = np.full((len(segs_32k), ROW), np.nan, np.float32)
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(segs_32k):
        if len(s) > 1024:
            by_len.setdefault(len(s), []).append(i)
    net = backbone_runner(NAME, weights) if by_len else None
    for same_length in by_len.values():
        for k in range(0, len(same_length), WINDOWS_PER_RUN):
            idx = same_length[k : k + WINDOWS_PER_RUN]
            o = net.run_mel(np.stack([mel_frontend(segs_32k[i]) for i in idx]))
            out[idx] = np.concatenate([o["logits"], o["embedding"]], axis=1)
    return out


def pack_rows(rows: np.ndarray, width: int) -> np.ndarray:
    """[n, ROW] -> [n, k, width] (zero-padded): extra rows beside a patch's log-mel frames, so the
    outputs travel with their patch through block-wise prediction."""
    k = -(-ROW // width)
    out = np.zeros((len(rows), k * width), np.float32)
    out[:, :ROW] = rows
    return out.reshape(len(rows), k, width)


def unpack_rows(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_rows`: [n, k, width] -> [n, ROW]."""
    return np.asarray(packed, np.float32).reshape(len(packed), -1)[:, :ROW]


def head_features(mean_row: np.ndarray, kind: str) -> np.ndarray:
    """What an AudioSet head reads from a track's mean row: ``all`` (527 logits + 384 embedding),
    ``logits``, ``emb``, ``genres`` (the genre classes' logits), ``music`` (the music branch's
    logits) or ``music_emb`` (those plus the embedding)."""
    m = np.asarray(mean_row, np.float64)
    lg, emb = m[..., :N_LOGITS], m[..., N_LOGITS:ROW]
    parts = {"all": (lg, emb), "logits": (lg,), "emb": (emb,), "genres": (lg[..., list(GENRE_CLASSES)],),
             "music": (lg[..., list(MUSIC_CLASSES)],), "music_emb": (lg[..., list(MUSIC_CLASSES)], emb)}
    if kind not in parts:
        raise ValueError(f"unknown AudioSet feature kind {kind!r}; known: {sorted(parts)}")
    return np.concatenate(parts[kind], axis=-1)


def style(mean_row: np.ndarray, exclude: tuple[int, ...] = ()) -> str:
    """The most probable AudioSet genre class outside ``exclude``, lower case ("salsa music")."""
    lg = np.asarray(mean_row, np.float64)[:N_LOGITS]
    names = labels()
    best = max((i for i in GENRE_CLASSES if i not in exclude), key=lambda i: lg[i])
    return names[best].lower()


#: Common spellings of genre names AudioSet writes otherwise.
SPELLINGS: dict[str, str] = {"hip hop": "hiphop", "r&b": "rhythm and blues", "rnb": "rhythm and blues",
                             "edm": "electronic dance music", "dnb": "drum and bass", "d&b": "drum and bass",
                             "bollywood": "music of bollywood", "latin": "music of latin america",
                             "soul": "soul music", "new age": "new-age music", "gospel": "gospel music"}


def zero_shot_class(label: str) -> int | None:
    """The AudioSet genre class named like ``label`` (None when none is): GTZAN's ten by
    ``ZERO_SHOT_TEN``, any other label by the class's name with or without " music", case and
    outer spaces ignored ("salsa" -> Salsa music, "Afrobeat", "drum and bass")."""
    key = " ".join(label.replace("-", " ").replace("_", " ").split()).casefold()
    key = SPELLINGS.get(key, key)
    if key in ZERO_SHOT_TEN:
        return ZERO_SHOT_TEN[key]
    names = labels()
    for i in GENRE_CLASSES:
        name = names[i].casefold()
        if key in (name, name.removesuffix(" music")):
            return i
    return None


def zero_shot_logp(mean_row: np.ndarray, genres: list[str]) -> np.ndarray:
    """[..., len(genres)] log-softmax of the mean logits of the AudioSet classes named like
    ``genres`` (:func:`zero_shot_class`): mn04's own zero-shot opinion on which of them the track
    is. Raises ValueError for a genre no AudioSet class is named after."""
    idx = [zero_shot_class(g) for g in genres]
    missing = [g for g, i in zip(genres, idx, strict=True) if i is None]
    if missing:
        raise ValueError(f"no AudioSet genre class is named like {', '.join(map(repr, missing))}")
    z = np.asarray(mean_row, np.float64)[..., idx]
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def track_features(rows: np.ndarray) -> np.ndarray | None:
    """[ROW] mean of the rows that ran (None when none did)."""
    r = np.asarray(rows, np.float64)
    r = r[~np.isnan(r).any(axis=1)]
    return r.mean(0) if len(r) else None
