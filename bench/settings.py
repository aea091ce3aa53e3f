"""The portal's settings, with bench/urls.py as the URLconf (bench/cards.py)."""

from pixverse_site.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
