"""Serving stored files (source images, videos, their posters) to the members allowed to see them.

The views check who may see a job; this module only sends the bytes. Videos
need byte ranges: Safari plays an MP4 only from a server that answers Range
requests, and every browser seeks through them. Django's FileResponse sends
whole files, so a single range is answered here (206, or 416 when it lies
outside the file). Behind nginx, PORTAL_MEDIA_ACCEL_REDIRECT hands the sending
to nginx instead (X-Accel-Redirect to an internal location), which frees the
web worker and does ranges itself. With media on S3-compatible storage
(MEDIA_S3_BUCKET), the member is sent to a short-lived signed link instead.
Every answer is Cache-Control private: a shared cache in front must not keep
a file that only some members may see.
"""

import mimetypes
import re
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.cache import patch_cache_control
from django.utils.http import content_disposition_header

# The only types a stored file is served as, to be shown in the page: the images, videos
# and sounds the forms take. Anything else -- a member's upload named page.html or p.js
# (an image that also parses as a script), an old file -- goes as bytes to download: a
# file must never run as a page or a script on the portal's own origin.
INLINE_TYPES = frozenset({
    "image/png", "image/jpeg", "image/webp", "image/gif",
    "video/mp4", "video/quicktime", "video/webm",
    "audio/mpeg", "audio/wav", "audio/x-wav", "audio/mp4", "audio/aac", "audio/x-m4a",
})
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 64 * 1024


class _Window:
    """A file read from start for length bytes, for a 206 answer's body."""

    def __init__(self, file: BinaryIO, start: int, length: int):
        file.seek(start)
        self.file, self.left = file, length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size < 0 else min(size, self.left)
        data = self.file.read(size)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.file.close()


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of a single 'bytes=' range within size bytes; None if unsatisfiable.

    Raises ValueError for a header this server does not honour (several ranges,
    other units): the whole file is sent then, as RFC 9110 allows.
    """
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        raise ValueError(header)
    first, last = match.groups()
    if first == "":  # the last N bytes
        length = int(last)
        return (max(0, size - length), size - 1) if length and size else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return None
    return start, end


def serve(request: HttpRequest, stored: FieldFile, *, content_type: str | None = None,
          filename: str = "", as_attachment: bool = False) -> HttpResponse:
    """The stored file, whole or the byte range asked for."""
    content_type = content_type or mimetypes.guess_type(stored.name)[0]
    if content_type not in INLINE_TYPES:
        content_type, as_attachment = "application/octet-stream", True
    disposition = content_disposition_header(as_attachment, filename) if filename or as_attachment else None
    if not isinstance(stored.storage, FileSystemStorage):
        # A private bucket: a link signed for a few minutes, asking the bucket to answer
        # with our type and file name. Nobody keeps the link (no-store).
        parameters = {"ResponseContentType": content_type}
        if disposition:
            parameters["ResponseContentDisposition"] = disposition
        response = HttpResponseRedirect(stored.storage.url(stored.name, parameters=parameters))
        response["Cache-Control"] = "private, no-store"
        return response
    if settings.PORTAL_MEDIA_ACCEL_REDIRECT:
        # nginx keeps this response's Cache-Control on the file it sends.
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.PORTAL_MEDIA_ACCEL_REDIRECT + stored.name
        if disposition:
            response["Content-Disposition"] = disposition
    else:
        response = _file_response(request, stored, content_type, filename, as_attachment)
    patch_cache_control(response, private=True, no_cache=True)
    return response


def _file_response(request: HttpRequest, stored: FieldFile, content_type: str, filename: str,
                   as_attachment: bool) -> HttpResponse:
    """The file from MEDIA_ROOT, whole or the single range asked for."""
    size = stored.size
    header = request.headers.get("Range", "")
    window = None
    if header:
        try:
            window = _byte_range(header, size)
        except ValueError:
            header = ""  # not a range we honour: the whole file
        else:
            if window is None:
                response = HttpResponse(status=416)
                response["Content-Range"] = f"bytes */{size}"
                response["Accept-Ranges"] = "bytes"
                return response
    file = stored.open("rb")
    if window is None:
        response = FileResponse(file, content_type=content_type, as_attachment=as_attachment,
                                filename=filename)
    else:
        start, end = window
        response = FileResponse(_Window(file, start, end - start + 1), status=206,
                                content_type=content_type,
                                as_attachment=as_attachment, filename=filename)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response
