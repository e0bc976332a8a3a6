"""The store: the one place that speaks SQL. Everything else speaks typed objects."""
