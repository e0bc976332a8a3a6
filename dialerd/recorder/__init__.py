"""dialerd.recorder."""
