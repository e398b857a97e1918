"""Code 128 barcode images of payment references, as PNG, rendered by python-barcode and Pillow."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict

import barcode
from barcode.writer import ImageWriter


class BarcodeRenderer:
    """Renders a reference once and keeps the last few hundred images in memory."""

    def __init__(self, max_cached: int = 512) -> None:
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._max = max_cached
        # Renders run in worker threads (barcode pages, slips' PDFs): the cache is shared by them.
        self._lock = threading.Lock()

    def png(self, reference: str) -> bytes:
        with self._lock:
            cached = self._cache.get(reference)
            if cached is not None:
                self._cache.move_to_end(reference)
                return cached
        image = self._render(reference)
        with self._lock:
            self._cache[reference] = image
            if len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return image

    @staticmethod
    def _render(reference: str) -> bytes:
        buffer = io.BytesIO()
        code = barcode.get("code128", reference, writer=ImageWriter())
        code.write(
            buffer, options={"module_width": 0.3, "module_height": 14.0, "font_size": 10, "quiet_zone": 4.0}
        )
        return buffer.getvalue()
