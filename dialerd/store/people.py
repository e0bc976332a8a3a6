"""SQL for agents with their extensions (R-LOG-5) and clients for caller-ID lookup (R-LOG-4)."""

from __future__ import annotations

from collections.abc import Sequence

from dialerd.store.base import SqlBase
from dialerd.store.models import Agent, ClientType, Contact, Extension


class PeopleSql(SqlBase):
    """Agents (keyed by text user id) and contacts (clients)."""

    async def upsert_agent(self, agent: Agent) -> None:
        """Create or update an agent and replace their extensions."""
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO agents(user_id, name, email, role, active, created_at)"
                " VALUES (?, ?, ?, ?, ?, strftime('%s', 'now'))"
                " ON CONFLICT(user_id) DO UPDATE SET name = excluded.name,"
                " email = excluded.email, role = excluded.role, active = excluded.active",
                (agent.user_id, agent.name, agent.email, agent.role, int(agent.active)),
            )
            await db.execute("UPDATE extensions SET agent = NULL WHERE agent = ?", (agent.user_id,))
            await db.executemany(
                "INSERT INTO extensions(extension, agent, endpoint) VALUES (?, ?, ?)"
                " ON CONFLICT(extension) DO UPDATE SET agent = excluded.agent,"
                " endpoint = excluded.endpoint",
                [(e.extension, agent.user_id, e.endpoint) for e in agent.extensions],
            )

    async def get_agent(self, user_id: str) -> Agent | None:
        """One agent with their extensions."""
        row = await self._one(
            "SELECT user_id, name, email, role, active FROM agents WHERE user_id = ?", (user_id,)
        )
        if row is None:
            return None
        exts = await self._all(
            "SELECT extension, endpoint FROM extensions WHERE agent = ? ORDER BY extension",
            (user_id,),
        )
        return Agent(
            user_id=row[0],
            name=row[1],
            email=row[2],
            role=row[3],
            active=bool(row[4]),
            extensions=tuple(Extension(e[0], e[1], user_id) for e in exts),
        )

    async def agent_for_extension(self, extension: str) -> Agent | None:
        """Who owns an extension (R-LOG-5)."""
        row = await self._one("SELECT agent FROM extensions WHERE extension = ?", (extension,))
        return await self.get_agent(row[0]) if row and row[0] else None

    async def add_contact(
        self, name: str, client_type: ClientType, numbers: Sequence[str], note: str = ""
    ) -> Contact:
        """Register a client with its numbers (R-LOG-4); a number already known is an error."""
        async with self._tx() as db:
            async with db.execute(
                "INSERT INTO contacts(name, client_type, note, created_at)"
                " VALUES (?, ?, ?, strftime('%s', 'now')) RETURNING id",
                (name, client_type.value, note),
            ) as cur:
                row = await cur.fetchone()
            assert row is not None
            await db.executemany(
                "INSERT INTO contact_numbers(number, contact_id) VALUES (?, ?)",
                [(n, row[0]) for n in numbers],
            )
        return Contact(int(row[0]), name, client_type, note, tuple(numbers))

    async def lookup_number(self, number: str) -> Contact | None:
        """Caller-ID lookup: the client known by an E.164 number."""
        row = await self._one(
            "SELECT c.id, c.name, c.client_type, c.note FROM contact_numbers n"
            " JOIN contacts c ON c.id = n.contact_id WHERE n.number = ?",
            (number,),
        )
        if row is None:
            return None
        numbers = await self._all(
            "SELECT number FROM contact_numbers WHERE contact_id = ? ORDER BY number", (row[0],)
        )
        return Contact(row[0], row[1], ClientType(row[2]), row[3], tuple(n[0] for n in numbers))
