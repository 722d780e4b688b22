"""Test media made on the spot: small clips encoded in-process with PyAV (mpeg4), images
with Pillow, and the broken kinds a real library holds."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

WIDTH, HEIGHT, RATE = 64, 48, 10
SCENE_FRAMES = 3


def pattern(seed: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A blocky random picture: different seeds give pictures a perceptual hash tells apart."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    return blocks.repeat(8, axis=0).repeat(8, axis=1)


def make_clip(path: Path, seed: int = 1, frames: int = 10, noise: int = 0) -> Path:
    """A ``frames``-frame clip whose picture (from the seed) changes every few frames, like
    scenes; with ``noise``, a near-identical copy of the same clip."""
    rng = np.random.default_rng(seed + 1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(frames):
            base = picture = pattern(seed * 1000 + index // SCENE_FRAMES)
            if noise:
                jitter = rng.integers(-noise, noise + 1, base.shape)
                picture = np.clip(base.astype(int) + jitter, 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_audio_only(path: Path) -> Path:
    """An .mp4 with one AAC stream and no video."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        for index in range(10):
            samples = (np.sin(np.arange(1024) / 10) * 0.3).astype(np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_image(path: Path, seed: int = 7, size: tuple[int, int] = (80, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pattern(seed, *size)).save(path)
    return path


def make_truncated(path: Path) -> Path:
    """A clip cut in half, as an interrupted copy leaves it (the mp4 index is lost)."""
    make_clip(path, seed=3)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_not_media(path: Path) -> Path:
    """Text with a media extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not a video, whatever its name says\n" * 20)
    return path
