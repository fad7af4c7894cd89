"""Static files storage that works with and without `collectstatic`."""

from __future__ import annotations

from django.contrib.staticfiles.storage import StaticFilesStorage
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
