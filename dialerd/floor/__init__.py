"""The live floor: agents, calls in flight, and the pacing loop that joins them."""
