"""The watcher's settings: defaults that work as they are, and bad values refused by key."""

from __future__ import annotations

import pytest

from stashhog.daemons.config import validate_configuration
from stashhog.daemons.metadata_generate_watcher import WatcherConfig, _distinct_roots
from stashhog.errors import ConfigurationError


def test_defaults_cover_videos_and_images_and_every_output():
    config = validate_configuration(WatcherConfig, {"roots": ["/srv/media"]})
    assert {"mp4", "mkv", "jpg", "png"} <= set(config.extensions)
    assert config.outputs == ["probe", "thumbnail", "phash", "checksum"]
    assert (config.batch_size, config.max_concurrent_jobs) == (20, 2)
    schema = WatcherConfig.model_json_schema()["properties"]
    assert all(prop.get("description") for prop in schema.values())
    assert schema["outputs"]["default"] == config.outputs  # the panel's form shows defaults


@pytest.mark.parametrize(
    ("stored", "key"),
    [
        ({"roots": ["videos"]}, "roots.0"),
        ({"roots": ["/a\x00b"]}, "roots.0"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_concurrent_jobs": 101}, "max_concurrent_jobs"),
        ({"outputs": ["sprite"]}, "outputs.0"),
        ({"outputs": []}, "outputs"),
        ({"extensions": ["m p4"]}, "extensions.0"),
        ({"scan_interval": "60"}, "scan_interval"),
        ({"check_interval": 10}, "check_interval"),
    ],
)
def test_bad_settings_are_refused_by_key(stored, key):
    with pytest.raises(ConfigurationError) as refused:
        validate_configuration(WatcherConfig, stored)
    assert refused.value.key == key


def test_roots_are_normalised_and_nested_ones_dropped():
    roots = ["/srv/media/", "/srv/media/films", "/srv/other", "/srv/media-2", "/srv/other"]
    assert _distinct_roots(roots) == ["/srv/media", "/srv/media-2", "/srv/other"]
    assert _distinct_roots(["/", "/srv"]) == ["/"]
