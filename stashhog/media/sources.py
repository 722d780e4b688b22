"""Reading media files: PyAV for videos (its wheels carry FFmpeg, so no system ffmpeg is
needed), Pillow for images. A source answers ``probe()`` and gives decoded frames as PIL
images; anything it cannot read raises, and the caller records the error for that file."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageOps

# Frames a video's perceptual hash is taken over, spread evenly through it (Stash takes 25 in
# a 5x5 sprite; 9 keep a 1,000-clip library quick while still ignoring one odd frame).
HASH_FRAMES = 9
TILE = 160  # width of one frame in the montage


class NoVideoStream(ValueError):
    """The file has no video stream, so no frame to show or hash."""


class VideoSource:
    def __init__(self, path: str) -> None:
        self.path = path
        self.container = av.open(path)
        videos = self.container.streams.video
        self.video = videos[0] if videos else None

    def close(self) -> None:
        self.container.close()

    def probe(self) -> dict:
        container, video = self.container, self.video
        audios = container.streams.audio
        return {
            "container": _container_name(container.format.name, self.path),
            "duration": self.duration(),
            "width": video.codec_context.width if video else None,
            "height": video.codec_context.height if video else None,
            "frame_rate": _rate(video.average_rate or video.guessed_rate) if video else None,
            "video_codec": video.codec_context.name if video else None,
            "audio_codec": audios[0].codec_context.name if audios else None,
            "bit_rate": container.bit_rate or None,
        }

    def duration(self) -> float | None:
        if self.container.duration:
            return self.container.duration / av.time_base
        if self.video is not None and self.video.duration and self.video.time_base:
            return float(self.video.duration * self.video.time_base)
        return None

    def frame(self, fraction: float) -> Image.Image:
        """The first frame at or after ``fraction`` of the duration (the first frame if the
        duration is unknown or the seek fails)."""
        if self.video is None:
            raise NoVideoStream("no video stream")
        target = (self.duration() or 0) * fraction
        image = self._decode_from(target) if target > 0 else None
        if image is None:
            image = self._decode_from(0.0)
        if image is None:
            raise ValueError("no frame could be decoded")
        return image

    def _decode_from(self, seconds: float) -> Image.Image | None:
        stream = self.video
        try:
            offset = int(seconds / stream.time_base) + (stream.start_time or 0)
            self.container.seek(offset, stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            return None
        last = None
        for frame in self.container.decode(stream):
            last = frame
            if frame.time is None or frame.time >= seconds - 1e-3:
                break
        return last.to_image() if last is not None else None

    def hash_image(self) -> Image.Image:
        frames = [self.frame((i + 0.5) / HASH_FRAMES) for i in range(HASH_FRAMES)]
        return montage(frames)


class ImageSource:
    def __init__(self, path: str) -> None:
        with Image.open(path) as raw:
            self.format = raw.format
            raw.load()  # decode now: a truncated image fails here, not half-way through
            self.image = ImageOps.exif_transpose(raw)

    def close(self) -> None:
        self.image.close()

    def probe(self) -> dict:
        width, height = self.image.size
        return {
            "container": (self.format or "").lower() or None,
            "duration": None,
            "width": width,
            "height": height,
            "frame_rate": None,
            "video_codec": None,
            "audio_codec": None,
            "bit_rate": None,
        }

    def frame(self, fraction: float) -> Image.Image:
        return self.image

    def hash_image(self) -> Image.Image:
        return self.image


def open_source(path: str, kind: str) -> VideoSource | ImageSource:
    return ImageSource(path) if kind == "image" else VideoSource(path)


def montage(frames: list[Image.Image]) -> Image.Image:
    """Frames side by side in a square grid, each scaled to ``TILE`` pixels wide."""
    columns = math.ceil(math.sqrt(len(frames)))
    rows = math.ceil(len(frames) / columns)
    first = frames[0]
    tile_height = max(1, round(TILE * first.height / max(1, first.width)))
    sheet = Image.new("RGB", (columns * TILE, rows * tile_height))
    for index, frame in enumerate(frames):
        tile = frame.convert("RGB").resize((TILE, tile_height))
        sheet.paste(tile, ((index % columns) * TILE, (index // columns) * tile_height))
    return sheet


def _container_name(format_name: str, path: str) -> str:
    # FFmpeg names demuxers by family ("mov,mp4,m4a,3gp,3g2,mj2"): show the member the file
    # claims to be when it is one of them.
    names = format_name.split(",")
    extension = Path(path).suffix.lower().lstrip(".")
    return extension if extension in names else names[0]


def _rate(rate: Fraction | None) -> float | None:
    return round(float(rate), 3) if rate else None
