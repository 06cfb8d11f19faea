"""Live streams: watch a source, raise alerts, keep a searchable record.

``Watcher`` / ``watch`` (``watcher.py``) on top of the stream reader (``stream.py``), the online
perception seam (``perception.py``), the event lifecycle and frame ring (``events.py``), the
alert sinks (``sinks.py``) and the SQLite record (``record.py``).
"""
