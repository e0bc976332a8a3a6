"""dialerd.ami."""
