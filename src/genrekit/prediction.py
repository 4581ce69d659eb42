"""Predict the genre of files, URLs and signals: the one path used by the CLI, demo, manifest
evaluation and the web service.

A :class:`Classifier` wraps one loaded :class:`~genrekit.models.base.GenreModel` (load once, predict
many). Every input is cut into the model's segments (``model.spec``); each segment gets
probabilities, and the track gets probabilities of its own.

Long inputs are decoded and classified in blocks (``audio.iter_audio_blocks``) so memory stays
bounded whatever the length (a 2-hour file stays well under 1 GB). Block boundaries fall on
multiples of the segment hop (or of the spec's ``block_quantum_samples``) and each block carries
the tail of the previous one (at least one segment plus the spec's edge margin, by default one
STFT window), so every segment is computed once, on exactly the samples a whole-file extraction
would use, away from the zero-padded block edges. (The default spec's MFCC statistics are the
exception: their frames and dB floor are per block, see ``features.MusicnnMfccSpec``.)

Track probabilities: when the input fits in one block the model's own ``track_probs`` is used
(whatever pooling the model defines); across several blocks it is the mean of the segment
probabilities, which equals ``track_probs`` for every model that keeps the base-class mean
pooling. ``Prediction.to_dict()`` is the JSON-lines record format of ``genrekit predict``.
"""

from __future__ import annotations

import inspect
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genrekit.audio import check_levels, check_signal, header_duration, iter_audio_blocks, resample
from genrekit.errors import AudioError, AudioTooLong, GenrekitError, with_detail
from genrekit.errors import printable as printable  # re-exported: its home was here
from genrekit.models.base import GenreModel, load_model
from genrekit.urls import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DURATION_S,
    DEFAULT_TIMEOUT_S,
    DEFAULT_TOTAL_TIMEOUT_S,
    download_audio,
    is_url,
)

_DIGITS = 6  # probabilities in records: plenty for comparisons, keeps JSON lines short
#: The answer for music outside the model's genres (open-set models only).
OTHER = "other"


def _probs_dict(labels: list[str], p: np.ndarray) -> dict[str, float]:
    return {lab: round(float(v), _DIGITS) for lab, v in zip(labels, p, strict=True)}


@dataclass
class Segment:
    """One analysed stretch of the input (seconds from the start) and its genre."""

    start_s: float
    end_s: float
    genre: str
    confidence: float
    probabilities: dict[str, float]
    in_set: float | None = None  # how likely this stretch is one of the model's genres (open-set models)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prediction:
    """The genre of one input, its per-segment timeline and (for models that have them) tags."""

    input: str
    genre: str
    confidence: float
    probabilities: dict[str, float]
    duration_s: float
    segments: list[Segment] = field(default_factory=list)
    tags: list[dict] | None = None
    model: str = ""
    #: the open set: ``genre`` is "other" when the music is not one of the model's genres; then
    #: ``nearest`` names the closest of them (always the forced choice), ``in_set`` is how likely the
    #: track is one of them (0..1; None for models without an open set), ``style`` describes it in
    #: the backbone's own tag words (e.g. "electronic, dance"). ``confidence`` is how sure the model
    #: is of ``genre``: the genre's probability among the model's genres, or, for an "other"
    #: answer, the certainty of "other" itself, ``1 - in_set`` (the nearest genre's probability is
    #: ``probabilities[nearest]``, :attr:`nearest_probability`; showing it beside "other" read as
    #: "88% sure it is other" when the model was 88% sure of a genre it had just ruled out).
    nearest: str | None = None
    in_set: float | None = None
    style: str | None = None

    @property
    def is_other(self) -> bool:
        """The open-set answer (a model's own label that happens to be "other" is not it)."""
        return self.genre == OTHER and self.in_set is not None

    @property
    def nearest_probability(self) -> float:
        """The probability of the nearest genre among the model's genres (the forced choice)."""
        return float(self.probabilities.get(self.nearest or self.genre, self.confidence))

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable genres, best first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:k]

    def labels(self, top_k: int | None = None) -> list[dict[str, Any]]:
        """``[{"label", "score"}]`` sorted by score, best first: the Hugging Face
        audio-classification pipeline's output (``top_k`` as there; None for every label), so code
        written for ``transformers.pipeline("audio-classification")`` reads genrekit's answer."""
        return [{"label": g, "score": p} for g, p in self.top(len(self.probabilities) if top_k is None else top_k)]

    def to_dict(self, segments: bool = True) -> dict[str, Any]:
        """Plain JSON types only: this dict is one line of ``genrekit predict --format jsonl
        --segments`` (``segments=False``: without the timeline, the line of plain ``--format
        jsonl``). ``labels`` is the HF-style list; ``probabilities`` keeps the label-ordered dict."""
        d = {
            "input": self.input,
            "genre": self.genre,
            "confidence": self.confidence,
            "nearest": self.nearest,
            "in_set": self.in_set,
            "style": self.style,
            "labels": self.labels(),
            "probabilities": dict(self.probabilities),
            "duration_s": self.duration_s,
            "segments": [s.to_dict() for s in self.segments],
            "tags": None if self.tags is None else [dict(t) for t in self.tags],
            "model": self.model,
        }
        if not segments:
            del d["segments"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prediction:
        segs = [Segment(**s) for s in d.get("segments") or []]
        return cls(d["input"], d["genre"], d["confidence"], dict(d["probabilities"]), d["duration_s"],
                   segs, d.get("tags"), d.get("model", ""), d.get("nearest"), d.get("in_set"), d.get("style"))


def closed_set_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record (``Prediction.to_dict()``) as the closed-set answer: "other" becomes the nearest
    genre, for the track and each segment (the record keeps its in-set scores). The API's
    ``closed_set`` switch; the same answer ``Classifier(open_set=False)`` gives."""
    out = dict(record)
    if out.get("genre") == OTHER and out.get("nearest"):
        out["genre"] = out["nearest"]
        out["confidence"] = out.get("probabilities", {}).get(out["nearest"], out.get("confidence"))
    if out.get("segments"):
        out["segments"] = [_closed_segment(s) if s.get("genre") == OTHER else s for s in out["segments"]]
    return out


def _closed_segment(seg: dict[str, Any]) -> dict[str, Any]:
    """A segment record's forced choice: its best genre, with that genre's probability."""
    best = max(seg["probabilities"], key=seg["probabilities"].get)
    return dict(seg, genre=best, confidence=seg["probabilities"][best])


def answer_confidence(genre: str, probability: float, in_set: float | None) -> float:
    """How sure the model is of an answer: ``1 - in_set`` for "other" (the certainty that the music
    is outside the model's genres), else the genre's own ``probability``."""
    if genre == OTHER and in_set is not None:
        return round(1.0 - float(in_set), _DIGITS)
    return round(float(probability), _DIGITS)


def _add_tags(acc: dict[str, float] | None, n: int, tags: dict[str, float] | None,
              weight: int) -> tuple[dict[str, float] | None, int]:
    """Accumulate segment-count-weighted tag probabilities (their mean over blocks is exact)."""
    if tags is None:
        return acc, n
    acc = {} if acc is None else acc
    for k, v in tags.items():
        acc[k] = acc.get(k, 0.0) + float(v) * weight
    return acc, n + weight


class _Decoding:
    """Wrap a block iterator so decoder failures surface as one-line AudioErrors naming the input."""

    def __init__(self, it: Iterator[np.ndarray], name: str) -> None:
        self.it = it
        self.name = name

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            try:
                block = next(self.it)
            except StopIteration:
                return
            except AudioError as exc:
                raise exc.for_source(self.name) from None
            except (MemoryError, KeyboardInterrupt):
                raise
            except Exception as exc:
                raise AudioError(self.name, with_detail("cannot decode audio", exc)) from None
            yield block


def _reporting(blocks: Iterator[np.ndarray], sample_rate: int, total_s: float,
               progress: Callable[[float, float], None]) -> Iterator[np.ndarray]:
    """Pass ``blocks`` through, calling ``progress(done_s, total_s)`` as they are classified.

    ``Classifier._classify`` reads one block ahead, so when block i+1 is asked for, block i-1 is
    done: that is what is reported (the last block is the caller's to report, when the answer is
    in). A failing callback (a closed terminal) never costs the prediction."""
    done = 0
    pending: list[int] = []
    for block in blocks:
        pending.append(len(block))
        if len(pending) > 2:
            done += pending.pop(0)
            try:
                progress(done / sample_rate, max(total_s, done / sample_rate))  # total: a header's claim
            except Exception:  # noqa: BLE001 (a progress display must not fail an input)
                pass
        yield block


def reads_audio_or_raise(model: GenreModel, where: object) -> None:
    """Refuse a model that cannot compute its inputs from audio, up front and in one line.

    Models trained on precomputed tables (notebook arrays, a features CSV with ``--columns all``,
    taggram files) have no feature spec (``model.spec is None``): they can score rows of such a
    table, never a song, and would otherwise fail on every input with an AttributeError.
    """
    if model.spec is None:
        raise GenrekitError(f"{where}: this model was trained on a precomputed table and cannot read audio")


def _refuse_non_finite(name: str, track: np.ndarray, probs: np.ndarray,
                       open_set: tuple[float | None, np.ndarray | None, str | None, float] | None,
                       tags: dict[str, float] | None) -> None:
    """Raise :class:`AudioError` for ``name`` when any number of its record would be NaN or infinite.

    Why here: ``Classifier._make`` is the one place records are made, for ``predict``, ``serve``,
    ``batch``, ``tag``/``sort`` and beets alike, so nothing downstream has to guess. A NaN confidence
    compares False with everything, so it slipped past ``--min-confidence``, got tagged, and broke
    the server's JSON (a 500); an input that makes the model say NaN gets no genre at all."""
    parts = [np.asarray(track, dtype=np.float64).ravel(), np.asarray(probs, dtype=np.float64).ravel()]
    if open_set is not None:
        parts += [np.asarray(v, dtype=np.float64).ravel() for v in (open_set[0], open_set[1]) if v is not None]
    if tags:
        parts.append(np.fromiter(tags.values(), dtype=np.float64, count=len(tags)))
    if not all(np.all(np.isfinite(x)) for x in parts):
        raise AudioError(name, "the model's answer for this audio is not a number (NaN or infinite); no genre given")


#: Zero-shot tag vocabularies a Classifier can report (``tags=``; ``--tags`` on the command line).
TAG_VOCABULARIES = ("msd", "audioset")


def tag_vocabulary(model: GenreModel, tags: str | None, name: str) -> str:
    """The zero-shot vocabulary to report: ``tags`` when the model has it, else the model's own
    (``msd`` for musicnn's models, ``audioset`` for mn04's); a vocabulary the model lacks is one
    clear error rather than silently no tags."""
    backbone = getattr(model, "backbone_name", None)
    if backbone is not None:
        from genrekit.backbones.musicnn import LABELS  # the tag names ``_embedder`` reports

        has_msd = backbone in LABELS
    else:  # no musicnn backbone: its module need not load (cold start)
        has_msd = False
    own = "msd" if has_msd else "audioset"
    if tags is None:
        return own
    if tags not in TAG_VOCABULARIES:
        raise GenrekitError(f"unknown tags vocabulary {tags!r}; choose one of {', '.join(TAG_VOCABULARIES)}")
    if tags == "msd" and not has_msd and hasattr(model, "audioset_tags"):
        raise GenrekitError(f"model {name!r} has no MSD tags (musicnn's); use --tags audioset, or --model musicnn "
                            "for the two-backbone model with MSD tags")
    return tags


class Classifier:
    """A loaded genre model plus the options of how inputs are read and reported.

    Options: ``block_seconds`` (decode/classify long inputs in blocks of about this length),
    ``min_seconds`` (shorter inputs are refused), ``top_tags`` (how many zero-shot tags to report
    for models that have them; 0 for none), ``open_set`` (answer "other" for music outside the
    model's genres, for models with an open-set score; False: always the nearest genre, the old
    forced choice), ``tags`` (the zero-shot vocabulary: ``msd``, musicnn's 50 Million Song Dataset
    tags, or ``audioset``, mn04's music classes: instruments, genres, moods), and the URL caps ``max_bytes``, ``max_duration_s``,
    ``timeout_s`` (each connect and read) and ``download_timeout_s`` (the whole download; None: none).
    Models without a feature spec (trained on precomputed tables) are refused with
    a GenrekitError, since a Classifier exists to read audio.
    """

    def __init__(
        self,
        model: GenreModel,
        *,
        name: str | None = None,
        block_seconds: float = 300.0,
        min_seconds: float = 1.0,
        top_tags: int = 3,  # as `genrekit predict --top-tags`, so to_dict() is its jsonl line
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        download_timeout_s: float | None = DEFAULT_TOTAL_TIMEOUT_S,
        open_set: bool = True,
        tags: str | None = None,
    ) -> None:
        self.name = name or str(model.info.get("name") or model.format or type(model).__name__)
        reads_audio_or_raise(model, self.name)
        self.model = model
        self.block_seconds = float(block_seconds)
        self.min_seconds = float(min_seconds)
        self.top_tags = int(top_tags)
        self.open_set = bool(open_set)
        self.tags = tag_vocabulary(model, tags, self.name)
        self.max_bytes = max_bytes
        self.max_duration_s = max_duration_s
        self.timeout_s = timeout_s
        self.download_timeout_s = download_timeout_s

    # ------------------------------------------------------------------------------------ set-up

    @classmethod
    def load(cls, model: GenreModel | str | os.PathLike[str] | None = None, **options: Any) -> Classifier:
        """``model``: None / ``"default"`` (pretrained default), a model file or folder, or an
        already loaded GenreModel."""
        if isinstance(model, GenreModel):
            return cls(model, **options)
        m = load_model(model)
        reads_audio_or_raise(m, model)  # name the model as the user gave it, not its stored name
        if "name" not in options:
            options["name"] = str(m.info.get("name") or ("default" if model in (None, "default") else model))
        return cls(m, **options)

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    @property
    def answers_other(self) -> bool:
        """True when this classifier can answer "other": an open-set model with ``open_set`` on."""
        return self.open_set and getattr(self.model, "open_threshold", None) is not None

    @property
    def sample_rate(self) -> int:
        return int(self.model.spec.sample_rate)

    def card(self) -> dict[str, Any]:
        """The model's card plus how this classifier reads inputs."""
        return {
            "name": self.name,
            **self.model.card(),
            "prediction": {
                "block_seconds": self.block_seconds,
                "min_seconds": self.min_seconds,
                "segment_seconds": self.model.spec.segment_samples / self.sample_rate,
                "segment_hop_seconds": self.model.spec.segment_hop_samples / self.sample_rate,
                "max_url_bytes": self.max_bytes,
                "max_url_duration_s": self.max_duration_s,
            },
        }

    # ----------------------------------------------------------------------------------- predict

    def predict(self, source: str | os.PathLike[str], *, name: str | None = None,
                progress: Callable[[float, float], None] | None = None,
                max_seconds: float | None = None) -> Prediction:
        """Genre of a file path or an http(s) URL (downloaded to a temporary folder, then deleted).

        ``progress(done_s, total_s)`` is called as an input longer than one block is worked through
        (seconds of audio classified so far, and the length its header claims), so a caller can
        show a bar inside a long file; short inputs, read in one go, never call it.
        ``max_seconds``: refuse audio longer than this (:class:`AudioTooLong`), counted on the
        decoded samples; URLs always get the classifier's ``max_duration_s`` (or this, if lower)."""
        if isinstance(source, str) and is_url(source):
            limit = min((x for x in (max_seconds, self.max_duration_s) if x), default=None)
            with tempfile.TemporaryDirectory(prefix="genrekit-url-") as tmp:
                path = download_audio(source, tmp, max_bytes=self.max_bytes,
                                      max_duration_s=self.max_duration_s, timeout_s=self.timeout_s,
                                      total_timeout_s=self.download_timeout_s)
                return self._predict_path(path, name or source, progress, limit)
        return self._predict_path(Path(source), name or str(source), progress, max_seconds)

    def predict_signal(self, y: np.ndarray, sample_rate: int, name: str = "signal") -> Prediction:
        """Genre of a signal in memory: [n] or [channels, n] float at ``sample_rate``."""
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 2:
            y = y.mean(axis=0, dtype=np.float32)
        if y.ndim != 1:
            raise AudioError(name, f"signal must be [n] or [channels, n], got shape {y.shape}")
        if not np.all(np.isfinite(y)):
            raise AudioError(name, "audio holds NaN or infinite samples")
        y = resample(y, int(sample_rate), self.sample_rate)
        check_signal(y, self.sample_rate, name, self.min_seconds)
        n = self._block_samples()
        blocks = (y[i : i + n] for i in range(0, len(y), n)) if n else iter([y])
        return self._classify(blocks, name)

    def predict_many(self, sources: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[str, Prediction | GenrekitError]]:
        """Predict each source in turn; a bad one yields its error and the batch goes on."""
        for src in sources:
            try:
                yield str(src), self.predict(src)
            except GenrekitError as exc:
                yield str(src), exc

    # ---------------------------------------------------------------------------------- internals

    def _block_quantum(self) -> int:
        """Samples that block boundaries fall on multiples of (the spec's
        ``block_quantum_samples``, by default its segment hop; 0 = not segmentable)."""
        return max(0, int(self.model.spec.block_quantum_samples))

    def _block_samples(self) -> int:
        """Block length in samples: a whole number of block quanta (0 = not segmentable)."""
        q = self._block_quantum()
        if q <= 0:
            return 0
        return max(1, int(self.block_seconds * self.sample_rate) // q) * q

    def _predict_path(self, path: Path, name: str, progress: Callable[[float, float], None] | None = None,
                      max_seconds: float | None = None) -> Prediction:
        """Decode and classify one file. Whether it is read in one block or streamed in several is
        decided by the samples actually decoded (``iter_audio_blocks``), never by the header's
        duration, and so is ``max_seconds``: a header that claims 10 s for 30 minutes of audio
        changes neither the memory bound nor the limit. A header whose claim is already over the
        limit is refused before any decoding (an honest long file costs nothing); otherwise the
        claim only sizes the progress bar."""
        sr = self.sample_rate
        n_block = self._block_samples()
        claimed: float | None = None
        try:
            if max_seconds or progress is not None:
                claimed = header_duration(path)
            if max_seconds and claimed is not None and claimed > max_seconds:
                raise AudioTooLong(name, max_seconds, claimed)
        except AudioError as exc:
            raise exc.for_source(name) from None
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise AudioError(name, with_detail("cannot decode audio", exc)) from None
        # iter_audio_blocks takes seconds; ask for a hair more than n_block samples so int() lands on it
        blocks = iter_audio_blocks(path, sr, block_seconds=(n_block + 0.5) / sr if n_block else None, mono=True,
                                   max_seconds=max_seconds or None)
        decoded: Iterator[np.ndarray] = iter(_Decoding(blocks, name))
        if progress is not None:
            decoded = _reporting(decoded, sr, claimed or 0.0, progress)
        return self._classify(decoded, name)

    def _classify(self, blocks: Iterator[np.ndarray], name: str) -> Prediction:
        """Features, segment and track probabilities of a signal given as consecutive blocks.

        Two routes. Models with a per-segment embedding (``taggram`` plus ``*_from_taggram``, like
        the musicnn default, whose segment probabilities look at neighbouring patches and whose
        track probabilities pool statistics over ~30 s windows of patches) get their embeddings collected block
        by block ([n, 50] floats: tiny even for hours), then segment and track probabilities are
        computed once on the whole track's embeddings, exactly as for a short file (one exception:
        a model's in-set backbone runs on every k-th patch of each block, so which patches it sees
        can shift at block joins; the in-set score moves in the fourth decimal). Other models
        score each segment on its own; their track probabilities are the model's ``track_probs``
        for single-block inputs and the mean of the segment probabilities otherwise.
        """
        model, spec, sr = self.model, self.model.spec, self.sample_rate
        hop = self._block_quantum()
        seg = int(spec.segment_samples)
        margin = int(spec.edge_margin_samples)  # how far a kept segment stays from a block's end
        carry = math.ceil((seg + margin) / hop) * hop if hop > 0 else 0
        embed = all(hasattr(model, a) for a in ("taggram", "segment_probs_from_taggram", "track_probs_from_taggram"))
        mean_pooling = type(model).track_probs is GenreModel.track_probs
        want_tags = self.top_tags > 0
        tag_kwargs = {"top_k": None} if want_tags and "top_k" in inspect.signature(model.tag_probs).parameters else {}

        buf: np.ndarray | None = None
        buf_start = 0  # absolute sample index of buf[0]
        total = 0
        peak = 0.0
        last_start = -1
        parts: list[np.ndarray] = []  # per kept segment: probabilities, or embeddings on the embed route
        starts_parts: list[np.ndarray] = []
        ends_parts: list[np.ndarray] = []
        tag_sum: dict[str, float] | None = None
        tag_n = 0
        track: np.ndarray | None = None
        n_buffers = 0
        embed_fn = None
        tag_names: list[str] | None = None

        nxt = next(blocks, None)
        if nxt is None:
            raise AudioError(name, "file holds no audio samples")
        while nxt is not None:
            block = nxt
            nxt = next(blocks, None)
            last = nxt is None
            total += len(block)
            if len(block):
                peak = max(peak, float(np.max(np.abs(block))))
            buf = block if buf is None else np.concatenate([buf, block])
            if hop <= 0 and not last:  # unsegmentable spec: the model needs the whole signal
                continue
            if last and n_buffers == 0:  # the whole signal is in hand: refuse it before the model runs
                check_levels(peak, total, sr, name, self.min_seconds)
            n_buffers += 1
            single = last and n_buffers == 1
            feats = model.features(buf)
            abs_start = buf_start + np.rint(np.asarray(feats.starts) * sr).astype(np.int64)
            keep = abs_start > last_start
            if not last:
                keep &= abs_start + seg + margin <= buf_start + len(buf)
            if keep.any():
                vals = feats.values if keep.all() else feats.values[keep]
                if embed:
                    if embed_fn is None:
                        embed_fn, tag_names = self._embedder()
                    parts.append(np.asarray(embed_fn(vals), dtype=np.float32))
                else:
                    p = np.asarray(model.segment_probs(vals), dtype=np.float64)
                    parts.append(p)
                    if single:
                        track = p.mean(axis=0) if mean_pooling else np.asarray(model.track_probs(vals), np.float64)
                if want_tags and (not embed or tag_names is None):
                    tag_sum, tag_n = _add_tags(tag_sum, tag_n, model.tag_probs(vals, **tag_kwargs), len(vals))
                starts_parts.append(abs_start[keep] / sr)
                dur = (np.asarray(feats.ends) - np.asarray(feats.starts))[keep]
                ends_parts.append(abs_start[keep] / sr + dur)
                last_start = int(abs_start[keep][-1])
            del feats
            if not last:
                cut = max(0, (len(buf) - carry) // hop * hop)
                buf = buf[cut:].copy()
                buf_start += cut

        check_levels(peak, total, sr, name, self.min_seconds)
        duration = total / sr
        starts = np.concatenate(starts_parts)
        ends = np.minimum(np.concatenate(ends_parts), duration)
        if embed:
            emb = np.concatenate(parts)
            probs = np.asarray(model.segment_probs_from_taggram(emb), dtype=np.float64)
            track = np.asarray(model.track_probs_from_taggram(emb), dtype=np.float64)
            open_set = self._open_set(emb)
            if want_tags and self.tags == "audioset" and hasattr(model, "audioset_tags"):
                tag_sum, tag_n = model.audioset_tags(emb), 1
            elif want_tags and tag_names is not None:  # the model's tag_probs: mean over patches
                tag_mean = emb[:, : len(tag_names)].mean(axis=0).astype(float)
                tag_sum, tag_n = dict(zip(tag_names, tag_mean, strict=True)), 1
        else:
            probs = np.concatenate(parts)
            if track is None:
                track = probs.mean(axis=0)
            open_set = None
        tags = {k: v / tag_n for k, v in tag_sum.items()} if tag_sum is not None and tag_n else None
        return self._make(name, track, probs, starts, ends, duration, tags, open_set)

    def _open_set(self, emb: np.ndarray) -> tuple[float | None, np.ndarray | None, str | None, float] | None:
        """(track in-set score, per-segment scores, style words, threshold) from a model that has
        an open-set head, else None."""
        model = self.model
        threshold = getattr(model, "open_threshold", None)
        if threshold is None or not hasattr(model, "in_set_from_taggram"):
            return None
        return (model.in_set_from_taggram(emb), model.segment_in_set_from_taggram(emb),
                model.style_from_taggram(emb), float(threshold))

    def _embedder(self):
        """(function values -> per-patch rows, tag names or None) for the embedding route: the
        model's ``patch_rows`` (the taggram, plus any per-patch statistics its heads read) or
        ``taggram``; musicnn runs a few patches per forward pass (``musicnn.run_patches``), so the
        backbone's activations, not the input length, set peak memory."""
        model = self.model
        names = None
        name = getattr(model, "backbone_name", None)
        if name is not None:
            from genrekit.backbones.musicnn import LABELS

            names = list(LABELS[name]) if name in LABELS else None
        return getattr(model, "patch_rows", model.taggram), names

    def _make(self, name: str, track: np.ndarray, probs: np.ndarray, starts: np.ndarray, ends: np.ndarray,
              duration: float, tags: dict[str, float] | None,
              open_set: tuple[float | None, np.ndarray | None, str | None, float] | None = None) -> Prediction:
        labels = self.labels
        _refuse_non_finite(name, track, probs, open_set, tags)
        best = int(np.argmax(track))
        seg_best = probs.argmax(axis=1)
        in_set, seg_in, style, threshold = open_set if open_set is not None else (None, None, None, 0.0)
        seg_scores = [None] * len(probs) if seg_in is None else [round(float(v), _DIGITS) for v in seg_in]

        def answer(label: str, score: float | None) -> str:
            return OTHER if self.open_set and score is not None and score < threshold else label

        segments = []
        for s, e, b, p, q in zip(starts, ends, seg_best, probs, seg_scores, strict=True):
            g = answer(labels[int(b)], q)
            segments.append(Segment(round(float(s), 3), round(float(e), 3), g, answer_confidence(g, p[int(b)], q),
                                    _probs_dict(labels, p), q))
        in_set = None if in_set is None else round(float(in_set), _DIGITS)
        genre = answer(labels[best], in_set)
        tag_list = None
        if tags is not None and self.top_tags > 0:
            top = sorted(tags.items(), key=lambda kv: -kv[1])[: self.top_tags]
            tag_list = [{"tag": k, "probability": round(float(v), _DIGITS)} for k, v in top]
        return Prediction(
            input=name,
            genre=genre,
            confidence=answer_confidence(genre, track[best], in_set),
            probabilities=_probs_dict(labels, track),
            duration_s=round(float(duration), 3),
            segments=segments,
            tags=tag_list,
            model=self.name,
            nearest=labels[best],
            in_set=in_set,
            style=style,
        )
