"""Employees from ``inbound.yaml`` into the store's agents and extensions (R-LOG-5), so the
call log's agent column and the extension -> agent lookups agree with the YAML."""

from __future__ import annotations

from typing import Protocol

from dialerd.config.inbound import InboundConfig
from dialerd.store.models import Agent, Extension

__all__ = ["sync_employees"]


class AgentWriter(Protocol):
    async def upsert_agent(self, agent: Agent) -> None: ...


async def sync_employees(config: InboundConfig, store: AgentWriter) -> int:
    """Create or update one agent per employee with its extension; how many."""
    for user, employee in config.employees.items():
        await store.upsert_agent(
            Agent(
                user_id=user,
                name=employee.name or user,
                email=employee.email,
                extensions=(Extension(employee.extension, employee.endpoint, user),),
            )
        )
    return len(config.employees)
