"""The engine at work: replay on a trace's clock, and the live daemon on the real one.

:mod:`.replay` and :mod:`.testing` drive the engine over recorded traces;
:mod:`.live` and :mod:`.daemon` over events from :mod:`.sources` on the real
clock, sending what it produces to the terminal, ``alerts.jsonl``, the
:mod:`.responder` (incidents and actions), the API's stream and
:mod:`.metrics`.  :mod:`.view` is the daemon as the API sees it.
"""
