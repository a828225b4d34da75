"""A fake OpenAI-compatible upstream provider for tests and benchmarks.

``server`` is the aiohttp server (``python -m tests.upstream.server``), ``process``
starts it as a real subprocess (``UpstreamProcess``).
"""
