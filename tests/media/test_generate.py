"""Generating one file's outputs, in-process: PyAV probes and decodes, Pillow makes the
cover, imagehash the perceptual hash; a broken file fails output by output."""

from __future__ import annotations

import imagehash
import pytest
from PIL import Image

from stashhog.media.checksum import EmptyFile, oshash
from stashhog.media.generate import generate_file
from stashhog.media.models import Output
from stashhog.media.thumbnails import thumbnail_path
from tests.media.clips import (
    make_audio_only,
    make_clip,
    make_image,
    make_not_media,
    make_truncated,
)

ALL = int(Output.PROBE | Output.THUMBNAIL | Output.PHASH | Output.CHECKSUM)


def generate(path, kind, tmp_path, wanted=ALL):
    cover = tmp_path / "cache" / f"{path.stem}.jpg"
    return generate_file(str(path), kind, wanted, cover, 320), cover


def test_a_clip_gets_every_output(tmp_path):
    result, cover = generate(make_clip(tmp_path / "media" / "clip.mp4"), "video", tmp_path)
    assert result.errors == [] and result.produced == ALL
    values = result.values
    assert values["container"] == "mp4" and values["video_codec"] == "mpeg4"
    assert (values["width"], values["height"], values["frame_rate"]) == (64, 48, 10.0)
    assert values["duration"] == pytest.approx(1.0, abs=0.15)
    assert values["audio_codec"] is None and values["bit_rate"] > 0
    assert len(values["phash"]) == 16 and len(values["checksum"]) == 16
    with Image.open(cover) as image:
        assert image.format == "JPEG" and image.size == (64, 48)
    assert not list((tmp_path / "media").glob("*.jpg")), "nothing is written beside the media"


def test_images_get_every_output(tmp_path):
    for name in ("still.png", "photo.jpg"):
        result, cover = generate(make_image(tmp_path / name), "image", tmp_path)
        assert result.errors == [] and result.produced == ALL, name
        assert (result.values["width"], result.values["height"]) == (80, 64)
        assert result.values["duration"] is None
        assert result.values["container"] == ("png" if name.endswith("png") else "jpeg")
        assert cover.is_file()


def test_a_truncated_clip_fails_but_keeps_its_checksum(tmp_path):
    result, cover = generate(make_truncated(tmp_path / "cut.mp4"), "video", tmp_path)
    assert result.produced == Output.CHECKSUM
    assert len(result.errors) == 1 and result.errors[0].startswith("open: ")
    assert not cover.exists()


def test_a_file_without_video_is_probed_but_has_no_cover_or_phash(tmp_path):
    result, cover = generate(make_audio_only(tmp_path / "sound.mp4"), "video", tmp_path)
    assert result.produced == Output.PROBE | Output.CHECKSUM
    assert result.values["audio_codec"] == "aac" and result.values["video_codec"] is None
    assert result.errors == ["thumbnail: no video stream", "phash: no video stream"]
    assert not cover.exists()


def test_a_text_file_named_like_a_video_fails(tmp_path):
    result, _ = generate(make_not_media(tmp_path / "notes.mkv"), "video", tmp_path)
    assert result.produced == Output.CHECKSUM and result.errors[0].startswith("open: ")
    image_result, _ = generate(make_not_media(tmp_path / "notes.jpg"), "image", tmp_path)
    assert image_result.errors[0].startswith("open: ")


def test_only_the_wanted_outputs_are_made(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4")
    result, cover = generate(clip, "video", tmp_path, wanted=int(Output.CHECKSUM | Output.PROBE))
    assert result.produced == Output.CHECKSUM | Output.PROBE
    assert "phash" not in result.values and not cover.exists()


def test_near_identical_clips_hash_alike_and_different_ones_do_not(tmp_path):
    def phash(name, **kwargs):
        result, _ = generate(make_clip(tmp_path / name, **kwargs), "video", tmp_path)
        return imagehash.hex_to_hash(result.values["phash"])

    original, copy, other = (
        phash("a.mp4", seed=1),
        phash("b.mp4", seed=1, noise=3),
        phash("c.mp4", seed=2),
    )
    assert original - copy <= 4
    assert original - other >= 16


def test_oshash_is_size_plus_the_words_of_head_and_tail(tmp_path):
    zeros = tmp_path / "zeros.bin"
    zeros.write_bytes(bytes(131072))
    assert oshash(zeros) == f"{131072:016x}"
    ones = tmp_path / "ones.bin"
    ones.write_bytes((1).to_bytes(8, "little") * (200_000 // 8))
    # 8,192 words of 1 in each 64 KiB chunk, plus the size.
    assert oshash(ones) == f"{200_000 + 2 * 8192:016x}"
    middle = bytearray(ones.read_bytes())
    middle[100_000] = 0xFF  # outside head and tail: the hash does not read it
    ones.write_bytes(bytes(middle))
    assert oshash(ones) == f"{200_000 + 2 * 8192:016x}"
    small = tmp_path / "small.bin"
    small.write_bytes(b"\x02" + bytes(8))  # 9 bytes: words 2 and 0 (padded), twice
    assert oshash(small) == f"{9 + 2 * 2:016x}"
    empty = tmp_path / "empty.bin"
    empty.touch()
    with pytest.raises(EmptyFile):
        oshash(empty)


def test_thumbnail_paths_come_from_the_id_alone(tmp_path):
    import uuid

    file_id = uuid.UUID("0123456789abcdef0123456789abcdef")
    path = thumbnail_path(tmp_path, file_id)
    assert path == tmp_path / "01" / "0123456789abcdef0123456789abcdef.jpg"
    with pytest.raises(ValueError):
        thumbnail_path(tmp_path, "../../etc/passwd")
