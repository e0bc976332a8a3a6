"""dialerd.inbound: caller-ID lookup, registration of new callers and extension routing."""
