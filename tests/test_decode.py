"""read_audio: libsndfile for what it reads, the bundled ffmpeg for the rest, one clear error naming the file."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiobench.data.decode import AudioBlocks, DecodeError, _ffmpeg_reason, read_audio
from audiobench.data.ffmpeg import FFMPEG_ENV, ffmpeg_exe
from audiobench.core.errors import AudiobenchError


def tone(freq: float, seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    """``[n, channels]`` sine at ``freq`` Hz, amplitude 0.5, in every channel."""
    t = np.arange(round(seconds * rate)) / rate
    return np.repeat((0.5 * np.sin(2 * np.pi * freq * t))[:, None], channels, axis=1).astype(np.float32)


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True,
                   capture_output=True)


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1.0 / rate)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    files = {name: d / name for name in ("stereo.wav", "surround.flac", "u8.wav", "aac.m4a", "opus.webm",
                                         "truncated.flac", "empty.flac", "text.flac")}
    sf.write(files["stereo.wav"], tone(440, 1.0, 44100, 2), 44100, subtype="PCM_16")
    sf.write(files["surround.flac"], tone(440, 1.0, 48000, 6), 48000, subtype="PCM_24")
    sf.write(files["u8.wav"], tone(440, 1.0, 8000), 8000, subtype="PCM_U8")
    ffmpeg("-i", str(files["stereo.wav"]), "-c:a", "aac", "-b:a", "96k", str(files["aac.m4a"]))
    ffmpeg("-i", str(files["stereo.wav"]), "-c:a", "libopus", "-b:a", "64k", str(files["opus.webm"]))
    whole = d / "whole.flac"
    sf.write(whole, tone(440, 3.0, 16000), 16000, subtype="PCM_16")
    files["truncated.flac"].write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    files["empty.flac"].write_bytes(b"")
    files["text.flac"].write_text("clip_id,label\nabc,dog\n" * 20)
    return files


def test_libsndfile_formats_keep_channels_rate_and_values(media):
    audio, rate = read_audio(media["stereo.wav"])
    assert rate == 44100 and audio.shape == (2, 44100) and audio.dtype == np.float32
    assert np.abs(audio[0] - tone(440, 1.0, 44100)[:, 0]).max() < 1e-3
    surround, rate = read_audio(media["surround.flac"])
    assert rate == 48000 and surround.shape == (6, 48000)


def test_eight_bit_wav_decodes_to_floats(media):
    audio, rate = read_audio(media["u8.wav"])
    assert rate == 8000 and audio.shape == (1, 8000)
    assert np.abs(audio).max() == pytest.approx(0.5, abs=0.02)
    assert dominant_frequency(audio[0], rate) == pytest.approx(440, abs=2)


@pytest.mark.parametrize("name", ["aac.m4a", "opus.webm"])
def test_compressed_formats_go_through_ffmpeg(name, media):
    with pytest.raises(sf.LibsndfileError):
        sf.info(media[name])  # libsndfile cannot: this is the ffmpeg path
    audio, rate = read_audio(media[name])
    assert audio.shape[0] == 2 and rate in (44100, 48000)
    assert audio.shape[1] / rate == pytest.approx(1.0, abs=0.06)  # codec priming/padding only
    assert dominant_frequency(audio[0], rate) == pytest.approx(440, abs=2)


@pytest.mark.parametrize(("name", "says"), [
    ("empty.flac", "empty file (0 bytes)"),
    ("text.flac", "not audio, or corrupt or truncated (libsndfile: Format not recognised; ffmpeg: "),
    ("truncated.flac", "corrupt FLAC: flac decoder lost sync (opens, then fails mid-stream: damaged or truncated)"),
])
def test_bad_files_raise_one_error_naming_the_file(name, says, media):
    with pytest.raises(DecodeError) as info:
        read_audio(media[name])
    message = str(info.value)
    assert message.startswith(f"{media[name]}: ") and says in message
    assert "\n" not in message and " @ 0x" not in message  # no raw ffmpeg log lines


def test_missing_file_is_a_decode_error(tmp_path):
    with pytest.raises(DecodeError, match="nothing.flac: cannot read"):
        read_audio(tmp_path / "nothing.flac")


def test_ffmpeg_reason_is_the_cause_not_the_consequence():
    stderr = (
        "[flac @ 0x5557c76b4b80] decode_frame() failed\n"
        "[aist#0:0/flac @ 0x5557c76adbc0] [dec:flac @ 0x5557c7686980] Decoding error: Invalid data found when "
        "processing input\n"
        "[aist#0:0/flac @ 0x5557c76adbc0] [dec:flac @ 0x5557c7686980] Terminating thread with return code "
        "-1094995529 (Invalid data found when processing input)\n"
        "Conversion failed!\n"
    )
    assert _ffmpeg_reason(stderr) == "Decoding error: Invalid data found when processing input"
    assert _ffmpeg_reason("Conversion failed!\n") == "Conversion failed!"


def _flipped(source: Path, target: Path, position: int) -> Path:
    data = bytearray(source.read_bytes())
    data[position] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def test_one_flipped_byte_in_a_flac_is_reported_not_decoded_by_ffmpeg(tmp_path):
    """libsndfile opens the file and fails mid-stream; ffmpeg would decode it (exit 0) into wrong samples."""
    good = tmp_path / "good.flac"
    rng = np.random.default_rng(1)
    sf.write(good, (0.3 * rng.standard_normal(32000)).astype(np.float32), 16000, subtype="PCM_16")
    bad = _flipped(good, tmp_path / "bad.flac", good.stat().st_size // 2)
    with pytest.raises(DecodeError) as info:
        read_audio(bad)
    assert str(info.value).startswith(f"{bad}: corrupt FLAC: ")
    with pytest.raises(DecodeError, match="corrupt FLAC"):
        read_audio(good, data=bad.read_bytes())  # from memory: the same check
    audio, _ = read_audio(good)
    assert np.array_equal(audio, sf.read(good, dtype="float32", always_2d=True)[0].T)  # libsndfile's own values


@pytest.mark.parametrize("subtype", ["PCM_S8", "PCM_16", "PCM_24"])
def test_a_flac_that_does_not_match_its_md5_signature_is_corrupt(tmp_path, subtype):
    good = tmp_path / "good.flac"
    sf.write(good, tone(440, 0.5, 16000, 2), 16000, subtype=subtype)
    audio, rate = read_audio(good)  # the signature of the intact file matches
    assert audio.shape == (2, 8000) and audio.flags.c_contiguous
    assert np.array_equal(audio, sf.read(good, dtype="float32", always_2d=True)[0].T)
    # A flipped bit in STREAMINFO's MD5 field: every frame decodes, only the signature check can tell.
    bad = _flipped(good, tmp_path / "bad.flac", 8 + 18 + 5)
    with pytest.raises(DecodeError, match=r"bad.flac: corrupt FLAC: the decoded samples do not match its MD5"):
        read_audio(bad)


def test_a_missing_ffmpeg_override_is_named(tmp_path, monkeypatch, media):
    missing = tmp_path / "no-such-ffmpeg"
    monkeypatch.setenv(FFMPEG_ENV, str(missing))
    ffmpeg_exe.cache_clear()
    try:
        with pytest.raises(AudiobenchError) as info:
            read_audio(media["aac.m4a"])
        assert str(info.value).startswith(f"{FFMPEG_ENV}={missing}: no such executable")
        assert read_audio(media["stereo.wav"])[1] == 44100  # libsndfile needs no ffmpeg
    finally:
        monkeypatch.delenv(FFMPEG_ENV)
        ffmpeg_exe.cache_clear()
    assert os.path.isfile(ffmpeg_exe())


# -- AudioBlocks: the same samples and errors, block by block (predict on long files) -------------------------
def read_blocks(path: Path, block: int) -> tuple[np.ndarray, int]:
    with AudioBlocks(path, block=block) as audio:
        blocks = list(audio)
    assert all(b.shape[1] <= block and b.dtype == np.float32 and b.flags.c_contiguous for b in blocks)
    return np.concatenate(blocks, axis=1), audio.rate


@pytest.mark.parametrize("name", ["stereo.wav", "surround.flac", "u8.wav", "aac.m4a", "opus.webm"])
def test_blocks_put_end_to_end_are_the_whole_files_samples(name, media):
    audio, rate = read_audio(media[name])
    for block in (1000, 4096, 1 << 20):
        got, got_rate = read_blocks(media[name], block)
        assert got_rate == rate and np.array_equal(got, audio)  # bit for bit, ffmpeg's pipe included


@pytest.mark.parametrize(("name", "says"), [
    ("empty.flac", "empty file (0 bytes)"),
    ("text.flac", "not audio, or corrupt or truncated (libsndfile: Format not recognised; ffmpeg: "),
    ("truncated.flac", "corrupt FLAC: "),
])
def test_blocks_of_a_bad_file_raise_the_error_read_audio_raises(name, says, media):
    with pytest.raises(DecodeError) as info:
        read_blocks(media[name], 1000)
    assert str(info.value).startswith(f"{media[name]}: ") and says in str(info.value)


def test_blocks_check_a_flacs_md5_signature_after_the_last_block(tmp_path):
    good = tmp_path / "good.flac"
    sf.write(good, tone(440, 0.5, 16000, 2), 16000, subtype="PCM_24")
    assert np.array_equal(read_blocks(good, 999)[0], read_audio(good)[0])
    bad = _flipped(good, tmp_path / "bad.flac", 8 + 18 + 5)  # every frame decodes; only the signature tells
    with pytest.raises(DecodeError, match=r"bad.flac: corrupt FLAC: the decoded samples do not match its MD5"):
        read_blocks(bad, 999)


def test_closing_blocks_early_stops_ffmpeg(media):
    with AudioBlocks(media["opus.webm"], block=256) as audio:
        next(iter(audio))
        proc = audio._proc
    assert proc is not None and proc.poll() is not None  # not left running behind a closed reader
