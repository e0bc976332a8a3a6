"""dialerd.billing."""
