"""`dialerd demo`: a campaign against the sandbox Asterisk and its simulated world."""
