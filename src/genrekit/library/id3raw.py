"""Edit the genre of an ID3v2 tag frame by frame, keeping every other frame's bytes as they are.

Why not let mutagen save the tag: mutagen parses every frame into its own model and renders the
whole tag again, so a v2.3 tag loses frames it translates or drops (TYER/TDAT/TRDA become TDRC,
RVAD/TSIZ vanish, IPLS becomes TIPL, a frame it cannot parse is silently left out, a duplicated
TCON is merged) and an MP3's ID3v1 tag is rewritten from the v2 values. Here only the frames
genrekit owns (``TCON`` and ``TXXX:GENREKIT``) are taken out and written anew, in the tag's own
version (2.3 or 2.4); every other frame, the header flags and the bytes outside the tag (audio,
ID3v1, other chunks) are copied unchanged. When the new frames fit in the tag's padding the tag
keeps its size, so an MP3's audio does not even move.

Where the tag lives:

- MP3: at the start of the file (an ID3v1 tag at the end is never touched);
- WAV: an ``id3 `` (or ``ID3 ``) chunk of the RIFF file; AIFF/AIFC: an ``ID3 `` chunk of the FORM.

A container whose size fields do not describe the file (a streaming WAV written to a pipe has
0xFFFFFFFF there) is refused with :class:`Id3Error`: writing into it would mean guessing where the
audio ends. So are tags genrekit cannot edit without re-rendering other frames (ID3v2.2, an
extended header or footer, frames whose sizes do not add up); the file is then left as it is.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

CONTAINERS = ("mp3", "riff", "aiff")
NEW_TAG_PADDING = 1024
_GROW_PADDING = 1024


class Id3Error(Exception):
    """This file's ID3 tag or container cannot be edited safely (the reason, without the name)."""


class Id3Unsupported(Id3Error):
    """A well-formed tag of a kind genrekit does not edit (ID3v2.2, extended header, footer)."""


@dataclass(frozen=True)
class Place:
    """Where the ID3v2 block sits in a file: ``block`` is ``data[start:end]`` (None: no tag yet).

    For RIFF/AIFF, ``start``/``end`` delimit the chunk's data and ``header`` is the chunk header's
    offset (-1 when there is no chunk)."""

    container: str
    start: int
    end: int
    block: bytes | None
    header: int = -1


def _syncsafe(b: bytes) -> int:
    n = 0
    for c in b:
        n = (n << 7) | (c & 0x7F)
    return n


def _to_syncsafe(n: int) -> bytes:
    if n >= 1 << 28:
        raise Id3Error("the ID3 tag would be larger than ID3v2 allows")
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def tag_length(block: bytes) -> int:
    """Bytes the ID3v2 tag at the start of ``block`` takes (header, frames, padding, footer)."""
    if len(block) < 10 or block[:3] != b"ID3":
        raise Id3Error("no ID3v2 header where the tag should be")
    return 10 + _syncsafe(block[6:10]) + (10 if block[3] == 4 and block[5] & 0x10 else 0)


# --------------------------------------------------------------------------------- containers


def locate(data: bytes | memoryview, container: str) -> Place:
    """Find the ID3v2 block in a whole file's bytes (Id3Error for containers that lie)."""
    mv = memoryview(data)
    if container == "mp3":
        if bytes(mv[:3]) == b"ID3":
            end = tag_length(bytes(mv[:10]))
            if end > len(mv):
                raise Id3Error("its ID3v2 tag claims more bytes than the file has")
            return Place("mp3", 0, end, bytes(mv[:end]))
        return Place("mp3", 0, 0, None)
    if container not in ("riff", "aiff"):
        raise ValueError(container)
    little = container == "riff"
    magic, forms = (b"RIFF", (b"WAVE",)) if little else (b"FORM", (b"AIFF", b"AIFC"))
    fmt = "<I" if little else ">I"
    what = "WAV" if little else "AIFF"
    if len(mv) < 12 or bytes(mv[:4]) != magic or bytes(mv[8:12]) not in forms:
        raise Id3Error(f"not a {what} file genrekit can write into")
    (total,) = struct.unpack(fmt, mv[4:8])
    if total == 0xFFFFFFFF or total == 0:
        raise Id3Error(f"a streaming {what} (its size fields are unset, as a program writing to a pipe "
                       "leaves them); genrekit cannot tag it safely")
    if total + 8 > len(mv) + 1:
        raise Id3Error(f"its {what} header says {total + 8} bytes but the file has only {len(mv)} (cut short); "
                       "genrekit cannot tag it safely")
    riff_end = min(total + 8, len(mv))  # bytes after it (an ID3v1 tag some tools append) are kept as they are
    pos, found = 12, None
    while pos < riff_end:
        if pos + 8 > riff_end:
            raise Id3Error(f"its {what} chunks do not fill the file (a cut chunk header at byte {pos})")
        cid = bytes(mv[pos:pos + 4])
        (size,) = struct.unpack(fmt, mv[pos + 4:pos + 8])
        if size == 0xFFFFFFFF or pos + 8 + size > riff_end:
            raise Id3Error(f"its {what} chunk '{cid.decode('latin-1')}' at byte {pos} claims more bytes than the "
                           "file has; genrekit cannot tag it safely")
        if cid.lower() == b"id3 " and found is None:
            found = (pos, pos + 8, pos + 8 + size)
        pos += 8 + size + (size & 1)
    if found is None:
        return Place(container, riff_end, riff_end, None, -1)
    head, start, end = found
    return Place(container, start, end, bytes(mv[start:end]), head)


def rebuild(data: bytes | memoryview, place: Place, block: bytes | None) -> list[bytes | tuple[int, int]]:
    """The new file as pieces: bytes to write, or (start, end) ranges to copy from ``data``.

    ``block`` None removes the tag (the chunk in RIFF/AIFF)."""
    n = len(data)
    if place.container == "mp3":
        return [p for p in (block or b"", (place.end, n)) if p]
    little = place.container == "riff"
    fmt = "<I" if little else ">I"
    (total,) = struct.unpack(fmt, bytes(memoryview(data)[4:8]))
    if place.header >= 0:  # replace (or drop) the existing chunk, in place
        old_chunk_end = place.end + ((place.end - place.start) & 1)
        old_len = old_chunk_end - place.header
        chunk = b"" if block is None else _chunk(place.container, data, place.header, block)
        new_total = total - old_len + len(chunk)
        pieces: list[bytes | tuple[int, int]] = [bytes(memoryview(data)[:4]), struct.pack(fmt, new_total),
                                                 (8, place.header), chunk, (min(old_chunk_end, n), n)]
    else:
        if block is None:
            return [(0, n)]
        at = place.start  # the end of the RIFF/FORM data: the new chunk goes there
        lead = b"\0" if at % 2 else b""  # the last chunk's missing pad byte
        chunk = _chunk(place.container, b"id3 " if little else b"ID3 ", -1, block)
        new_total = at + len(lead) + len(chunk) - 8
        pieces = [bytes(memoryview(data)[:4]), struct.pack(fmt, new_total), (8, at), lead, chunk, (at, n)]
    if new_total > 0xFFFFFFFF:
        raise Id3Error("the file would grow past the 4 GiB its container allows")
    return [p for p in pieces if (p[0] < p[1] if isinstance(p, tuple) else p)]


def _chunk(container: str, data_or_id: bytes | memoryview, header: int, block: bytes) -> bytes:
    fmt = "<I" if container == "riff" else ">I"
    cid = bytes(memoryview(data_or_id)[header:header + 4]) if header >= 0 else bytes(data_or_id)
    return cid + struct.pack(fmt, len(block)) + block + (b"\0" if len(block) % 2 else b"")


# --------------------------------------------------------------------------------- the tag itself


@dataclass
class _Tag:
    major: int
    flags: int
    frames: list[tuple[bytes, bytes]]  # (frame id, the whole frame: header and data, decoded from unsync)
    padding: int  # bytes of padding after the frames (in the tag as stored)
    body_len: int  # the tag body as stored (after the 10-byte header)
    plain_sizes: bool  # a v2.4 tag whose frame sizes are plain integers (an old iTunes bug)
    trailing: bytes  # bytes after the tag inside the block (a RIFF chunk longer than its tag)


def _unsync_decode(b: bytes) -> bytes:
    return b.replace(b"\xff\x00", b"\xff")


def _unsync_encode(b: bytes) -> bytes:
    out = bytearray()
    for i, c in enumerate(b):
        out.append(c)
        if c == 0xFF and (i + 1 == len(b) or b[i + 1] == 0 or b[i + 1] >= 0xE0):
            out.append(0)
    return bytes(out)


def _frames(body: bytes, major: int, plain: bool) -> tuple[list[tuple[bytes, bytes]], int] | None:
    """The frames of a tag body and where its padding starts; None when the sizes do not add up."""
    frames, pos = [], 0
    while pos + 10 <= len(body):
        fid = body[pos:pos + 4]
        if fid[0] == 0:
            break
        if not all(48 <= c <= 57 or 65 <= c <= 90 for c in fid):
            return None
        size = struct.unpack(">I", body[pos + 4:pos + 8])[0] if (major == 3 or plain) else _syncsafe(body[pos + 4:pos + 8])
        end = pos + 10 + size
        if end > len(body):
            return None
        frames.append((fid, body[pos:end]))
        pos = end
    if any(body[pos:]):
        return None  # bytes after the frames that are not padding: a frame genrekit cannot see
    return frames, pos


def parse(block: bytes) -> _Tag:
    """Split an ID3v2.3/2.4 tag into frames (Id3Error for tags genrekit does not edit)."""
    length = tag_length(block)
    if length > len(block):
        raise Id3Error("its ID3v2 tag claims more bytes than it has")
    major, flags = block[3], block[5]
    if major not in (3, 4):
        raise Id3Unsupported(f"an ID3v2.{major} tag, which genrekit does not edit (it writes ID3v2.3 and 2.4); "
                       "left as it is")
    if flags & 0x40:
        raise Id3Unsupported("its ID3 tag has an extended header, which genrekit does not edit; left as it is")
    if major == 4 and flags & 0x10:
        raise Id3Unsupported("its ID3 tag has a footer, which genrekit does not edit; left as it is")
    stored = block[10:length]
    body = _unsync_decode(stored) if major == 3 and flags & 0x80 else stored
    for plain in ((False, True) if major == 4 else (False,)):
        got = _frames(body, major, plain)
        if got is not None:
            frames, pad_at = got
            return _Tag(major, flags, frames, len(body) - pad_at, len(stored), plain, block[length:])
    raise Id3Error("its ID3 tag has frames whose sizes do not add up (damaged); genrekit leaves it as it is")


def _format_flags(major: int, frame: bytes) -> int:
    """The frame's compression/encryption/grouping/length/unsync flags (0: plain data)."""
    flags = struct.unpack(">H", frame[8:10])[0]
    return flags & (0x00E0 if major == 3 else 0x004F)


def _txxx_desc(major: int, frame: bytes) -> str | None:
    if _format_flags(major, frame):
        return None
    data = frame[10:]
    if not data:
        return None
    enc, rest = data[0], data[1:]
    if enc in (1, 2):
        for i in range(0, len(rest) - 1, 2):
            if rest[i:i + 2] == b"\0\0":
                raw = rest[:i]
                return raw.decode("utf-16" if enc == 1 else "utf-16-be", "replace")
        return None
    cut = rest.find(b"\0")
    if cut < 0:
        return None
    return rest[:cut].decode("latin-1" if enc == 0 else "utf-8", "replace")


def _encode_text(major: int, texts: list[str]) -> tuple[int, list[bytes], bytes]:
    """(encoding byte, encoded strings, terminator) in the best encoding the version has."""
    if major == 4:
        return 3, [t.encode("utf-8") for t in texts], b"\0"
    try:
        return 0, [t.encode("latin-1") for t in texts], b"\0"
    except UnicodeEncodeError:
        return 1, [t.encode("utf-16") for t in texts], b"\0\0"  # with a BOM, as v2.3 wants


def _frame(major: int, plain: bool, fid: bytes, data: bytes) -> bytes:
    size = struct.pack(">I", len(data)) if major == 3 or plain else _to_syncsafe(len(data))
    return fid + size + b"\0\0" + data


def genre_frame(major: int, plain: bool, genres: list[str]) -> bytes:
    """A TCON frame: v2.3 joins several genres with "/" (its convention), v2.4 separates them by NUL."""
    texts = ["/".join(genres)] if major == 3 else list(genres)
    enc, parts, term = _encode_text(major, texts)
    return _frame(major, plain, b"TCON", bytes([enc]) + term.join(parts))


def marker_frame(major: int, plain: bool, desc: str, value: str) -> bytes:
    enc, (d, v), term = _encode_text(major, [desc, value])
    return _frame(major, plain, b"TXXX", bytes([enc]) + d + term + v)


def edit(block: bytes | None, genres: list[str], marker: str | None, marker_key: str) -> bytes:
    """The block with its genre frames (all TCON) and genrekit's marker frame replaced; every other
    frame and byte kept. A file without a tag gets a new ID3v2.4 tag."""
    if block is None:
        frames = []
        if genres:
            frames.append(genre_frame(4, False, genres))
        if marker is not None:
            frames.append(marker_frame(4, False, marker_key, marker))
        body = b"".join(frames)
        return b"ID3\x04\x00\x00" + _to_syncsafe(len(body) + NEW_TAG_PADDING) + body + bytes(NEW_TAG_PADDING)
    tag = parse(block)
    new_genre = genre_frame(tag.major, tag.plain_sizes, genres) if genres else None
    new_mark = marker_frame(tag.major, tag.plain_sizes, marker_key, marker) if marker is not None else None
    out: list[bytes] = []
    for fid, frame in tag.frames:
        if fid == b"TCON":
            if new_genre is not None:
                out.append(new_genre)  # where the first TCON was
                new_genre = None
        elif fid == b"TXXX" and _txxx_desc(tag.major, frame) == marker_key:
            if new_mark is not None:
                out.append(new_mark)
                new_mark = None
        else:
            out.append(frame)
    out += [f for f in (new_genre, new_mark) if f is not None]
    body = b"".join(out)
    if tag.major == 3 and tag.flags & 0x80:
        body = _unsync_encode(body)
    pad = tag.body_len - len(body) if len(body) <= tag.body_len else _GROW_PADDING
    header = b"ID3" + bytes([tag.major, block[4], tag.flags]) + _to_syncsafe(len(body) + pad)
    return header + body + bytes(pad) + tag.trailing


def read(block: bytes | None, marker_key: str) -> tuple[int, list[str], str | None]:
    """(version, TCON values, marker text) as mutagen reads them, without translating the tag
    to v2.4 and without merging an ID3v1 tag in."""
    if block is None:
        return 4, [], None
    from mutagen.id3 import ID3

    length = tag_length(block)
    try:
        # v2.2 frames (TCO) only read as TCON once translated; v2.3/2.4 are read as they are
        tags = ID3(io.BytesIO(block[:length]), translate=block[3] == 2, load_v1=False)
    except Exception as exc:  # mutagen's ID3NoHeaderError, struct errors on damaged tags
        raise Id3Error(f"cannot read its ID3 tag ({type(exc).__name__}: {exc})") from None
    genres = [str(g) for f in tags.getall("TCON") for g in f.text]
    mark = tags.get(f"TXXX:{marker_key}")
    return tags.version[1], genres, (str(mark.text[0]) if mark is not None and mark.text else None)
