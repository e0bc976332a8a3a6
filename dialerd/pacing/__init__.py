"""dialerd.pacing."""
