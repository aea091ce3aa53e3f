"""Checks on a source image before it is uploaded to PixVerse.

The format is read from the content, never from the file name. The image is
decoded in full once, so that a truncated file is refused here rather than
by PixVerse after it has cost an upload; the pixel limit is checked from the
header first, so a decompression bomb is refused before it is decoded.
"""

import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, UnidentifiedImageError

# Pillow names; what PixVerse accepts.
ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
# Pillow's names for files that are JPEG by content: MPO is the multi-picture
# JPEG many phones and cameras write.
JPEG_VARIANTS = {"MPO"}


def _megabytes(size: int) -> str:
    """A size as people read it: whole MB where it is, else one decimal, else KB."""
    megabytes = size / 1024 / 1024
    if megabytes >= 1:
        return f"{megabytes:.0f} MB" if megabytes == int(megabytes) else f"{megabytes:.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


class InvalidImage(ValueError):
    """An image PixVerse would refuse, with a message for the person who chose it."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class ImageInfo:
    format: str
    content_type: str
    width: int
    height: int
    size: int

    @property
    def extension(self) -> str:
        return {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[self.format]


def check_image(
    data: bytes, *, max_side: int | None = None, max_bytes: int | None = None
) -> ImageInfo:
    """Return what the image is, or raise InvalidImage saying why PixVerse would refuse it."""
    if max_side is None:
        max_side = settings.PIXVERSE_MAX_IMAGE_SIDE
    if max_bytes is None:
        max_bytes = settings.PIXVERSE_MAX_IMAGE_BYTES
    if not data:
        raise InvalidImage("The file is empty.", "empty")
    if len(data) > max_bytes:
        raise InvalidImage(
            f"The file is larger than the limit of {_megabytes(max_bytes)}.", "too_large"
        )
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit; we refuse
            # by our own, lower limit below before anything is decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image_format = "JPEG" if image.format in JPEG_VARIANTS else image.format
                width, height = image.size
                if image_format not in ACCEPTED_FORMATS:
                    raise InvalidImage(
                        f"{image_format} images are not accepted; use JPEG, PNG or WebP.",
                        "format",
                    )
                if width > max_side or height > max_side:
                    raise InvalidImage(
                        f"The image is {width}x{height} px; the limit is {max_side}x{max_side} px.",
                        "dimensions",
                    )
                if width < 1 or height < 1:
                    raise InvalidImage("The image has no pixels.", "dimensions")
                image.load()
    except InvalidImage:
        raise
    except UnidentifiedImageError:
        raise InvalidImage("This is not an image; use JPEG, PNG or WebP.", "format") from None
    except Image.DecompressionBombError:
        raise InvalidImage("The image has too many pixels to be decoded safely.", "bomb") from None
    except (OSError, SyntaxError, ValueError):
        # Pillow reports truncated and corrupt data as OSError (or, from some
        # plugins, SyntaxError / ValueError); its wording means nothing to a person.
        raise InvalidImage("The image is damaged or incomplete.", "damaged") from None
    return ImageInfo(
        format=image_format,
        content_type=ACCEPTED_FORMATS[image_format],
        width=width,
        height=height,
        size=len(data),
    )
