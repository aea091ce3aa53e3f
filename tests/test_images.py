"""The source-image checks: format by content, size, dimensions, truncation and decompression bombs.

Every image is built in memory with Pillow; no image files are checked in.
"""

import io
import random
import struct
import time
import zlib

import pytest
from PIL import Image, ImageFile

from generations.images import ImageInfo, InvalidImage, check_image


def encode(fmt: str, size: tuple[int, int] = (64, 48), *, noisy: bool = False, **options) -> bytes:
    """An image of `size` in Pillow format `fmt`: one colour, or noise (which does not compress)."""
    image = Image.effect_noise(size, 64).convert("RGB") if noisy else Image.new("RGB", size, (200, 30, 60))
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def with_png_size(png: bytes, width: int, height: int) -> bytes:
    """The PNG with its IHDR claiming width x height, and a CRC that matches the claim."""
    data = bytearray(png)
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    # The CRC covers the chunk type and data: bytes 12..29.
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def refusal(data: bytes, **limits) -> InvalidImage:
    with pytest.raises(InvalidImage) as caught:
        check_image(data, **limits)
    return caught.value


@pytest.fixture
def decodes(monkeypatch):
    """The sizes of the images whose pixels were decoded during the test."""
    loaded = []
    real_load = ImageFile.ImageFile.load

    def spying_load(self):
        loaded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spying_load)
    return loaded


# Accepted formats


@pytest.mark.parametrize(
    ("fmt", "content_type", "extension"),
    [("JPEG", "image/jpeg", "jpg"), ("PNG", "image/png", "png"), ("WEBP", "image/webp", "webp")],
)
def test_it_accepts_jpeg_png_and_webp_and_says_what_they_are(fmt, content_type, extension):
    data = encode(fmt, (64, 48))

    info = check_image(data)

    assert info == ImageInfo(format=fmt, content_type=content_type, width=64, height=48, size=len(data))
    assert info.extension == extension


def test_it_reports_the_true_size_in_bytes_and_the_true_dimensions():
    data = encode("PNG", (123, 45), noisy=True)

    info = check_image(data)

    assert (info.width, info.height, info.size) == (123, 45, len(data))


def test_it_reads_the_format_from_the_content_not_from_a_name():
    # The function only ever sees bytes: a JPEG is a JPEG, a PNG a PNG,
    # whatever name the upload came with.
    assert check_image(encode("JPEG")).format == "JPEG"
    assert check_image(encode("JPEG")).content_type == "image/jpeg"
    assert check_image(encode("PNG")).format == "PNG"
    assert check_image(encode("PNG")).content_type == "image/png"


def test_it_accepts_a_png_with_transparency():
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")

    assert check_image(buffer.getvalue()).format == "PNG"


# Refused formats and non-images


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_it_refuses_gif_bmp_and_tiff(fmt):
    error = refusal(encode(fmt))

    assert error.code == "format"
    assert fmt in error.message


def test_it_refuses_random_bytes():
    noise = random.Random(1234).randbytes(4096)

    assert refusal(noise).code == "format"


def test_it_refuses_text():
    assert refusal(b"This is a plain text file, not a picture.\n" * 20).code == "format"


def test_it_refuses_a_file_with_only_an_image_like_name_in_it():
    assert refusal(b"holiday.jpg").code == "format"


def test_it_refuses_empty_bytes():
    error = refusal(b"")

    assert error.code == "empty"


# Size in bytes


def test_it_refuses_a_file_over_the_byte_limit_given_as_an_argument():
    data = encode("PNG", (64, 64), noisy=True)

    assert refusal(data, max_bytes=len(data) - 1).code == "too_large"


def test_it_accepts_a_file_exactly_at_the_byte_limit():
    data = encode("PNG", (64, 64), noisy=True)

    assert check_image(data, max_bytes=len(data)).size == len(data)


def test_it_refuses_a_file_over_the_byte_limit_from_the_settings(settings):
    data = encode("PNG", (64, 64), noisy=True)
    settings.PIXVERSE_MAX_IMAGE_BYTES = len(data) - 1

    assert refusal(data).code == "too_large"


def test_the_byte_limit_is_checked_before_the_content():
    # Even something that is not an image is refused for its size first.
    assert refusal(b"x" * 101, max_bytes=100).code == "too_large"


def test_the_default_byte_limit_is_twenty_megabytes():
    too_big = b"\0" * (20 * 1024 * 1024 + 1)

    assert refusal(too_big).code == "too_large"


# Dimensions


@pytest.mark.parametrize("size", [(4001, 10), (10, 4001)])
def test_it_refuses_an_image_wider_or_taller_than_4000_pixels(size):
    error = refusal(encode("PNG", size))

    assert error.code == "dimensions"
    assert f"{size[0]}x{size[1]}" in error.message


def test_it_accepts_a_4000_by_4000_image():
    data = encode("PNG", (4000, 4000))

    info = check_image(data)

    assert (info.width, info.height) == (4000, 4000)


def test_it_takes_the_side_limit_from_the_argument():
    data = encode("PNG", (201, 10))

    assert refusal(data, max_side=200).code == "dimensions"
    assert check_image(data, max_side=201).width == 201


def test_it_takes_the_side_limit_from_the_settings(settings):
    settings.PIXVERSE_MAX_IMAGE_SIDE = 100

    assert refusal(encode("PNG", (101, 10))).code == "dimensions"
    assert check_image(encode("PNG", (100, 10))).width == 100


def test_it_refuses_an_oversized_image_before_decoding_it(decodes):
    data = with_png_size(encode("PNG", (8, 8)), 5000, 5000)

    assert refusal(data).code == "dimensions"
    assert decodes == []


# Decompression bombs


def test_it_refuses_a_png_claiming_ten_billion_pixels_without_decoding_it(decodes):
    bomb = with_png_size(encode("PNG", (8, 8)), 100_000, 100_000)

    started = time.monotonic()
    error = refusal(bomb)

    assert time.monotonic() - started < 1
    # Pillow's own guard, in Image.open, fires before our side limit is looked at.
    assert error.code == "bomb"
    assert decodes == []


def test_pillows_bomb_guard_refuses_it_even_when_our_side_limit_would_let_it_through(decodes):
    bomb = with_png_size(encode("PNG", (8, 8)), 100_000, 100_000)

    started = time.monotonic()
    error = refusal(bomb, max_side=200_000)

    assert time.monotonic() - started < 1
    assert error.code == "bomb"
    assert decodes == []


# Damaged files


def test_it_refuses_a_truncated_jpeg():
    data = encode("JPEG", (256, 256), noisy=True)

    assert refusal(data[: len(data) // 2]).code == "damaged"


def test_it_refuses_a_truncated_png():
    data = encode("PNG", (256, 256), noisy=True)

    assert refusal(data[: len(data) // 2]).code == "damaged"


def test_it_refuses_a_truncated_webp():
    data = encode("WEBP", (256, 256), noisy=True)

    assert refusal(data[: len(data) // 2]).code == "damaged"


def test_it_refuses_a_png_whose_pixels_do_not_match_its_crc():
    data = bytearray(encode("PNG", (64, 64), noisy=True))
    idat = data.index(b"IDAT")
    data[idat + 20] ^= 0xFF

    assert refusal(bytes(data)).code == "damaged"


# Messages


@pytest.mark.parametrize(
    ("data", "limits"),
    [
        (b"", {}),
        (b"x" * 101, {"max_bytes": 100}),
        (encode("GIF"), {}),
        (b"not an image", {}),
        (encode("PNG", (4001, 10)), {}),
        (with_png_size(encode("PNG", (8, 8)), 100_000, 100_000), {}),
        (encode("JPEG", (256, 256), noisy=True)[:3000], {}),
    ],
    ids=["empty", "too_large", "format", "not_an_image", "dimensions", "bomb", "damaged"],
)
def test_every_refusal_is_a_plain_sentence(data, limits):
    error = refusal(data, **limits)

    assert error.message
    assert error.message[0].isupper()
    assert error.message.endswith(".")
    assert str(error) == error.message


def test_a_refusal_is_a_value_error():
    assert isinstance(refusal(b""), ValueError)


def test_it_accepts_a_multi_picture_jpeg_as_jpeg():
    # Phones and cameras write MPO: a JPEG by content, with extra pictures inside.
    out = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(
        out, "MPO", save_all=True, append_images=[Image.new("RGB", (20, 20), "blue")]
    )
    info = check_image(out.getvalue())
    assert (info.format, info.content_type, info.extension) == ("JPEG", "image/jpeg", "jpg")


@pytest.mark.parametrize(("limit", "wording"), [
    (20 * 1024 * 1024, "20 MB"), (1536 * 1024, "1.5 MB"), (100, "1 KB"), (300 * 1024, "300 KB"),
])
def test_the_size_message_names_the_real_limit(limit, wording):
    with pytest.raises(InvalidImage) as caught:
        check_image(b"x" * (limit + 1), max_bytes=limit)
    assert caught.value.message == f"The file is larger than the limit of {wording}."


def test_the_damaged_message_is_plain_words():
    png = encode("PNG", (64, 64), noisy=True)
    with pytest.raises(InvalidImage) as caught:
        check_image(png[: len(png) // 2])
    assert caught.value.message == "The image is damaged or incomplete."
