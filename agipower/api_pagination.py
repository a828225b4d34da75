"""Pages of /api/v1 lists: ``{"count", "next", "previous", "results"}``."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    # A larger ``limit`` is clamped to this (DRF's rule), so a page is bounded
    # and ``?limit=999999999999999999999`` never reaches PostgreSQL's bigint.
    # An ``offset`` past the end answers an empty page before any query.
    max_limit = 1000
