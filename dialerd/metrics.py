"""Prometheus metrics, all prefixed ``dialerd_``; served by `dialerd run` on metrics.port.

Kept in one module so a dashboard author can read every series dialerd exports in one
place. Labels are bounded (campaign names, outcomes, states): never a phone number or id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CALLS = Counter(
    "dialerd_calls_total", "Finished outbound attempts by outcome", ["campaign", "outcome"]
)
ABANDON_RATE = Gauge("dialerd_abandon_rate", "Abandoned / live-answered since start", ["campaign"])
AGENTS = Gauge("dialerd_agents", "Agents by state", ["state"])
AMI_CONNECTED = Gauge("dialerd_ami_connected", "1 while the AMI session is logged in")
AMI_RECONNECTS = Counter("dialerd_ami_reconnects_total", "AMI reconnections")
PACING_LAUNCHES = Counter(
    "dialerd_pacing_launches_total", "Calls launched by the pacer", ["campaign"]
)
PACING_DECISION = Gauge(
    "dialerd_pacing_last_plan", "Calls the pacer asked for at the last tick", ["campaign"]
)
CONNECT_LATENCY = Histogram(
    "dialerd_connect_latency_seconds",
    "Live answer to agent bridged",
    ["campaign"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
MQTT_DROPPED = Gauge("dialerd_mqtt_dropped", "MQTT events dropped while the broker was away")
WRAPUP_TIMEOUTS = Counter(
    "dialerd_wrapup_timeouts_total",
    "Wrap-ups closed by the campaign's timeout code, not by the agent",
    ["campaign"],
)
PREVIEW_GIVEBACKS = Counter(
    "dialerd_preview_givebacks_total", "Previewed leads given back undialled", ["campaign", "why"]
)
