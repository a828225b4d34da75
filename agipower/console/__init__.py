"""The console's pages that compose several apps (one module per page or
group of pages), at the top floor: each may read from every app below."""
