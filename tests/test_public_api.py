"""The public API: every name in gplinker.__all__ resolves, and `import gplinker` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gplinker


@pytest.mark.parametrize("name", gplinker.__all__)
def test_every_public_name_resolves_to_what_it_is_named(name):
    assert getattr(gplinker, name).__name__ == name


def test_all_lists_exactly_the_lazily_imported_names():
    assert sorted(gplinker.__all__) == sorted(gplinker._WHERE)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        gplinker.Nothing  # noqa: B018


def test_import_gplinker_does_not_load_torch():
    code = "import sys, gplinker; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_package_is_typed():
    from importlib.resources import files

    assert files("gplinker").joinpath("py.typed").is_file()
