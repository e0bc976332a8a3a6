"""dialerd: paces outbound dialing and keeps the call-centre floor working beside Asterisk."""

__version__ = "0.1.0"
