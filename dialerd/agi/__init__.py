"""dialerd.agi."""
