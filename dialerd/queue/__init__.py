"""dialerd.queue."""
