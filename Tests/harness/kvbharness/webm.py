"""The recorded WebM fixtures and just enough EBML reading to check what viewers receive.

A fixture is a real MediaRecorder recording (Tests/WebMTests/Fixtures/NAME.webm) plus the chunk
sizes the browser delivered (NAME.webm.chunks.json); publishers replay those chunks as-is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "WebMTests" / "Fixtures"  # Tests/WebMTests/Fixtures
FIXTURE_NAMES = ["vp8-opus", "vp9", "av1", "vp8-video-only"]

CLUSTER_ID = bytes.fromhex("1F43B675")
SEGMENT_ID = 0x18538067
CLUSTER = 0x1F43B675
TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_TYPE = 0x83
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
VIDEO_TRACK_TYPE = 1


def _vint(data: bytes, pos: int, keep_marker: bool = False) -> tuple[int, int, bool]:
    """(value, length, is_unknown_size) of the EBML variable-size integer at pos."""
    first = data[pos]
    length, mask = 1, 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    value = first if keep_marker else first & (mask - 1)
    for k in range(1, length):
        value = (value << 8) | data[pos + k]
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, unknown


def _element(data: bytes, pos: int) -> tuple[int, int, int | None]:
    """(id, header length, size or None if unknown) of the element at pos."""
    element_id, id_len, _ = _vint(data, pos, keep_marker=True)
    size, size_len, unknown = _vint(data, pos + id_len)
    return element_id, id_len + size_len, None if unknown else size


@dataclass
class Fixture:
    name: str
    data: bytes
    chunk_sizes: list[int]
    mime_type: str
    cluster_offsets: list[int] = field(default_factory=list)
    keyframe_cluster_offsets: list[int] = field(default_factory=list)
    # keyframe cluster offset -> end of its first video block: once the relay has that many bytes
    # it can produce the keyframe fragment.
    keyframe_complete_at: dict[int, int] = field(default_factory=dict)
    video_tracks: set[int] = field(default_factory=set)

    @property
    def chunks(self) -> list[bytes]:
        out, pos = [], 0
        for size in self.chunk_sizes:
            out.append(self.data[pos : pos + size])
            pos += size
        return out

    @property
    def init_segment(self) -> bytes:
        """EBML header + Segment header + Info + Tracks: the bytes before the first Cluster."""
        return self.data[: self.cluster_offsets[0]]


def _parse(fixture: Fixture) -> None:
    data = fixture.data
    video_tracks: set[int] = set()
    pos = 0
    current_cluster: int | None = None
    first_video_block_seen = True
    while pos < len(data):
        element_id, header, size = _element(data, pos)
        if element_id in (SEGMENT_ID, CLUSTER) and size is None:
            if element_id == CLUSTER:
                current_cluster, first_video_block_seen = pos, False
                fixture.cluster_offsets.append(pos)
            pos += header  # descend into an unknown-size master element
            continue
        assert size is not None, f"{fixture.name}: unexpected unknown size at {pos}"
        body = pos + header
        if element_id == TRACKS:
            video_tracks = _video_tracks(data, body, body + size)
        elif element_id in (SIMPLE_BLOCK, BLOCK_GROUP) and not first_video_block_seen:
            block = body
            if element_id == BLOCK_GROUP:  # find its Block child
                p = body
                while p < body + size:
                    child, child_header, child_size = _element(data, p)
                    if child == BLOCK:
                        block = p + child_header
                        break
                    p += child_header + (child_size or 0)
            track, track_len, _ = _vint(data, block)
            if track in video_tracks:
                first_video_block_seen = True
                # SimpleBlock flag 0x80 = keyframe; a BlockGroup without ReferenceBlock is one too,
                # which MediaRecorder never writes, so treat BlockGroups as non-key.
                is_key = element_id == SIMPLE_BLOCK and bool(data[block + track_len + 2] & 0x80)
                if is_key:
                    fixture.keyframe_cluster_offsets.append(current_cluster)
                    fixture.keyframe_complete_at[current_cluster] = body + size
        pos = body + size


def _video_tracks(data: bytes, start: int, end: int) -> set[int]:
    tracks = set()
    pos = start
    while pos < end:
        element_id, header, size = _element(data, pos)
        if element_id == TRACK_ENTRY:
            number = kind = None
            p = pos + header
            while p < pos + header + size:
                child, child_header, child_size = _element(data, p)
                value = int.from_bytes(data[p + child_header : p + child_header + child_size], "big")
                if child == TRACK_NUMBER:
                    number = value
                elif child == TRACK_TYPE:
                    kind = value
                p += child_header + child_size
            if kind == VIDEO_TRACK_TYPE and number is not None:
                tracks.add(number)
        pos += header + size
    return tracks


def _video_tracks_of(data: bytes) -> set[int]:
    pos = 0
    while pos < len(data):
        element_id, header, size = _element(data, pos)
        if element_id == SEGMENT_ID:
            pos += header
            continue
        if element_id == TRACKS:
            return _video_tracks(data, pos + header, pos + header + size)
        if element_id == CLUSTER or size is None:
            break
        pos += header + size
    return set()


def _size_vint(size: int) -> bytes:
    """An 8-byte EBML size (always valid, whatever the size)."""
    return bytes([0x01]) + size.to_bytes(7, "big")


def big_keyframe_cluster(fixture: Fixture, payload_bytes: int, timecode: int = 0) -> bytes:
    """A Cluster holding one keyframe SimpleBlock of `payload_bytes` on the fixture's
    video track: a high-bitrate keyframe, as a 4K camera would produce. The relay only reads the
    WebM structure, so the payload is filler."""
    track = min(fixture.video_tracks)
    assert track < 127
    block = bytes([0x80 | track]) + (0).to_bytes(2, "big") + bytes([0x80]) + bytes(range(256)) * (payload_bytes // 256) \
        + bytes(payload_bytes % 256)
    body = bytes([0xE7, 0x84]) + timecode.to_bytes(4, "big") + bytes([SIMPLE_BLOCK]) + _size_vint(len(block)) + block
    return CLUSTER_ID + bytes([0x01]) + b"\xff" * 7 + body  # unknown size, as MediaRecorder writes


@cache
def load_fixture(name: str) -> Fixture:
    data = (FIXTURES_DIR / f"{name}.webm").read_bytes()
    meta = json.loads((FIXTURES_DIR / f"{name}.webm.chunks.json").read_text())
    fixture = Fixture(name=name, data=data, chunk_sizes=list(meta["chunks"]), mime_type=meta.get("mimeType", ""))
    fixture.video_tracks = _video_tracks_of(data)
    assert sum(fixture.chunk_sizes) == len(data), f"{name}: chunk sizes do not add up to the file size"
    _parse(fixture)
    assert fixture.keyframe_cluster_offsets, f"{name}: no keyframe cluster found"
    return fixture


def looped(fixture: Fixture, repeats: int) -> Fixture:
    """One long session: the init segment, then the fixture's clusters `repeats` times over, cut
    into chunks of the recording's chunk sizes. Timecodes repeat (a browser would stall on that);
    the relay only cuts at element boundaries, so for it this is a valid, long stream."""
    media = fixture.data[fixture.cluster_offsets[0] :]
    data = fixture.init_segment + media * repeats
    sizes, total, k = [], 0, 0
    while total < len(data):
        size = min(fixture.chunk_sizes[k % len(fixture.chunk_sizes)], len(data) - total)
        sizes.append(size)
        total += size
        k += 1
    stream = Fixture(name=f"{fixture.name}x{repeats}", data=data, chunk_sizes=sizes, mime_type=fixture.mime_type)
    _parse(stream)
    return stream
