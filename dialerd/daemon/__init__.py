"""`dialerd run`: the daemon a call centre runs beside Asterisk."""
