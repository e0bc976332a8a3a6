"""dialerd.recorder: call recordings (R-LOG-6) and the ``dialerd recordings`` CLI."""
