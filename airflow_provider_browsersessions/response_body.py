"""A response body read in pieces: decompressed here, with a hard cap on its decoded size."""

from __future__ import annotations

import zlib

#: Bytes of raw body asked for per read: small enough that one read of a gzip bomb inflates to little.
READ_SIZE = 64 * 1024

#: Bytes kept of an error answer's body (4xx/5xx), and read of it for its text (``platforms.base.api_error_text``):
#: the text is cut to a few hundred characters anyway.
ERROR_BODY_LIMIT = 64 * 1024

#: Decoded bytes asked of the decompressor per step: the cap's check never waits for a huge piece.
INFLATE_STEP = 1024 * 1024

#: What both transports ask for, so both decode the same encodings here (not brotli or zstd, which would
#: need a package the runtime does not have, and whose decoders the cap could not bound).
ACCEPT_ENCODING = "gzip, deflate"


class BodyTooLarge(Exception):
    """The decoded body passed the cap (the transport turns it into ``ResponseTooLargeError``)."""


class UnsupportedEncoding(Exception):
    """The server used a ``Content-Encoding`` we did not ask for."""


class BoundedBody:
    """
    Collects raw body pieces, decompressing ``gzip``/``deflate`` itself, never holding more than ``limit`` bytes.

    The decompressor is asked for at most a MiB (and never past the cap) per call, so a small gzip body
    that inflates to gigabytes costs about ``limit`` bytes of memory before ``BodyTooLarge``.

    :param content_encoding: The response's ``Content-Encoding`` header ("" when none).
    :param limit: Decoded bytes allowed.
    :param truncate: Keep the first ``limit`` bytes and ignore the rest instead of raising (error bodies).
    """

    def __init__(self, *, content_encoding: str, limit: int, truncate: bool = False) -> None:
        self.limit = limit
        self.truncate = truncate
        self.full = False
        self._data = bytearray()
        encoding = content_encoding.strip().lower()
        if encoding in ("", "identity"):
            self._inflater = None
        elif encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            # RFC 9110 "deflate" is zlib-wrapped; 32 + MAX_WBITS also accepts the gzip header some servers send.
            self._inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)
        else:
            raise UnsupportedEncoding(encoding)

    def feed(self, raw: bytes) -> None:
        """Add raw bytes; raise ``BodyTooLarge`` (or just stop keeping, with ``truncate``) past the cap."""
        if self.full or not raw:
            return
        if self._inflater is None:
            self._keep(raw)
            return
        data = raw
        while data and not self.full:
            try:
                piece = self._inflater.decompress(data, min(self.limit - len(self._data) + 1, INFLATE_STEP))
            except zlib.error as err:
                raise ValueError(f"the compressed body is corrupt ({err})") from None
            self._keep(piece)
            data = self._inflater.unconsumed_tail

    def finish(self) -> bytes:
        """The decoded body."""
        if self._inflater is not None and not self.full:
            self._keep(self._inflater.flush())
        return bytes(self._data)

    def _keep(self, piece: bytes) -> None:
        room = self.limit - len(self._data)
        if len(piece) <= room:
            self._data += piece
            return
        if not self.truncate:
            raise BodyTooLarge
        self._data += piece[:room]
        self.full = True
