"""The container encoded audio is in, told from its first bytes: a parquet row or a tar member may carry no
file name, and a name may lie (a WAV saved as ``.flac``)."""
from __future__ import annotations

HEAD = 64  # bytes enough for every signature below


def container_suffix(head: bytes) -> str | None:
    """The file suffix of the container ``head`` (the first :data:`HEAD` bytes or more) begins, None if unknown."""
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return ".wav"
    if head[:4] == b"fLaC":
        return ".flac"
    if head[:4] == b"OggS":  # the first page holds the codec's identification header
        return ".opus" if b"OpusHead" in head[:HEAD] else ".ogg"
    if head[:3] == b"ID3":
        return ".mp3"
    if head[4:8] == b"ftyp":
        return ".m4a"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM / Matroska
        return ".webm"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # an MPEG audio frame's sync
        layer = (head[1] >> 1) & 3
        return ".aac" if layer == 0 else ".mp3"  # layer 0 is ADTS AAC's; 1-3 are MPEG layers III-I
    return None
