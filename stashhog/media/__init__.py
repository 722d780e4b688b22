"""The media library: files under watched folders, their generated metadata (probe, cover
thumbnail, perceptual hash, oshash checksum), the ``METADATA_GENERATE`` job that produces it,
and the API and pages that show it. The ``METADATA_GENERATE_WATCHER`` daemon is a thin loop over
``scanner``, ``work`` and ``fs_events``.

Heavy libraries (PyAV, Pillow, imagehash) are imported only where files are processed
(``generate``), so the web process and the CLI never load them.
"""
