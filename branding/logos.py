"""A tenant's logo: accepted only as PNG, JPEG or WebP (recognised by content, never by name;
SVG, which can carry script, is refused), at most ``MAX_BYTES`` and ``MAX_PIXELS`` (a
decompression bomb is refused before it is decoded), then decoded and written anew as a
plain PNG at most ``MAX_SIZE`` — metadata, trailing bytes and anything else of the upload
are gone, so no hostile file is ever served or mailed."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from core.errors import PermanentError

MAX_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 16_000_000
MAX_SIZE = (600, 200)
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP"}


def reencode_logo(data: bytes) -> tuple[bytes, int, int]:
    """The logo as a clean PNG and its width and height; PermanentError says why not."""
    if not data:
        raise PermanentError("choose an image file for the logo")
    if len(data) > MAX_BYTES:
        raise PermanentError(f"the logo is larger than {MAX_BYTES // (1024 * 1024)} MB")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!doctype")) or b"<svg" in head:
        raise PermanentError("SVG logos are not accepted (they can carry scripts); use PNG")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as img:
                if img.format not in FORMATS:
                    raise PermanentError("the logo must be a PNG, JPEG or WebP image")
                width, height = img.size
                if width * height > MAX_PIXELS or width > 10_000 or height > 10_000:
                    raise PermanentError(
                        f"the logo is {width}x{height} pixels; at most {MAX_PIXELS // 1_000_000}"
                        " million pixels are accepted"
                    )
                img.load()
                clean = img.convert("RGBA")
    except PermanentError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PermanentError("the logo has too many pixels to be an honest logo") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise PermanentError("the logo must be a PNG, JPEG or WebP image") from None
    clean.thumbnail(MAX_SIZE)
    out = io.BytesIO()
    clean.save(out, format="PNG", optimize=True)
    return out.getvalue(), clean.width, clean.height
