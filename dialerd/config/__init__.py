"""dialerd.config."""
