"""The HTTP captioning service behind ``showattend-serve``: an aiohttp application (``app``), the dynamic batcher that
decodes concurrent requests together (``batcher``), the checks on what a request may send (``limits``, ``controls``),
Prometheus metrics (``metrics``) and the page at ``/`` (``assets/index.html``). See docs/serving.md."""
