"""dialerd.bus."""
