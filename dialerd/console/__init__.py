"""The agent console (`dialerd console`): Textual in a terminal, MQTT to dialerd."""
