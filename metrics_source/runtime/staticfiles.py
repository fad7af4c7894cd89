"""Static files storage that works with and without `collectstatic`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.contrib.staticfiles.storage import StaticFilesStorage
from django.core.files.storage import FileSystemStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


class ManifestOrPlainStorage(CompressedManifestStaticFilesStorage):
    """Hashed, compressed, long-cached names once `collectstatic` has written its manifest
    (the Docker image does); plain names before that, which WhiteNoise serves straight from
    the apps (WHITENOISE_USE_FINDERS), so `make run` and the tests need no collect step."""

    manifest_strict = False

    def url(self, name: str | None, force: bool = False) -> str:
        if not self.hashed_files:
            return StaticFilesStorage.url(self, name)
        return super().url(name, force)


class PlotlyFinder(BaseFinder):
    """Serves plotly.js from the installed plotly package as ``plotly/plotly.min.js``, so the
    dashboard's chart library comes from our own static files (no CDN), at the exact version
    the Python side builds figures for."""

    prefix = "plotly/"
    name = "plotly.min.js"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import plotly

        self.directory = Path(plotly.__file__).parent / "package_data"
        self.storage = FileSystemStorage(location=str(self.directory))
        self.storage.prefix = self.prefix.rstrip("/")  # type: ignore[attr-defined]

    def find(  # type: ignore[override]  # django-stubs overloads on find_all's literal
        self, path: str, find_all: bool = False, **kwargs: Any
    ) -> str | list[str]:
        if path != self.prefix + self.name:
            return [] if find_all else ""
        found = str(self.directory / self.name)
        return [found] if find_all else found

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        yield self.name, self.storage
