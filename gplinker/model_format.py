"""The version of the model dir's `gplinker` section, and the check every loader runs.

A model dir's config.json holds the encoder config plus a `gplinker` section (docs/formats.md).
Its `format_version` says which layout that section has; CHANGELOG.md lists each version and the
gplinker release that reads it. Dirs written before the field existed are version 1.
"""

from __future__ import annotations

from typing import Any

from gplinker.errors import ConfigError

MODEL_FORMAT = 1  # the `gplinker` section layout this code writes and reads


def check_model_format(section: dict[str, Any], where: str) -> None:
    """Refuse a `gplinker` section of a newer or unknown format, naming both versions."""
    version = section.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"{where}: unknown model format_version {version!r} (this gplinker reads {MODEL_FORMAT})")
    if version > MODEL_FORMAT:
        raise ConfigError(f"{where}: written in model format {version}, newer than the {MODEL_FORMAT} this gplinker "
                          "reads; upgrade gplinker (pip install -U gplinker)")
