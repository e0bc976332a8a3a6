"""SQL for campaigns, their result codes and registration categories/topics (R-RC, R-REG)."""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from dialerd.config.models import CampaignConfig
from dialerd.store.base import SqlBase
from dialerd.store.models import Campaign, RegistrationTopic

_CAMPAIGN_COLS = "id, name, config_json, created_at, updated_at"


def _campaign(row: aiosqlite.Row) -> Campaign:
    return Campaign(
        id=row["id"],
        name=row["name"],
        config_json=row["config_json"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class CampaignsSql(SqlBase):
    """Campaign rows mirror the YAML; result codes and topics are copied for history."""

    async def sync_campaign(self, config: CampaignConfig, now: float) -> Campaign:
        """Create or update a campaign from YAML (see `Store.sync_campaign`)."""
        payload = config.model_dump_json()
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO campaigns(name, config_json, created_at, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                " config_json = excluded.config_json, updated_at = excluded.updated_at"
                " WHERE config_json <> excluded.config_json",
                (config.name, payload, now, now),
            )
            row = await self._one(
                f"SELECT {_CAMPAIGN_COLS} FROM campaigns WHERE name = ?", (config.name,)
            )
            assert row is not None
            campaign = _campaign(row)
            await self._sync_codes(db, campaign.id, config)
            await self._sync_registration(db, campaign.id, config)
        return campaign

    @staticmethod
    async def _sync_codes(
        db: aiosqlite.Connection, campaign_id: int, config: CampaignConfig
    ) -> None:
        await db.execute("UPDATE result_codes SET active = 0 WHERE campaign_id = ?", (campaign_id,))
        await db.executemany(
            "INSERT INTO result_codes(campaign_id, code, label, category, contact_priority,"
            " score, callback_minutes, funnel_phase, flags, active)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
            " ON CONFLICT(campaign_id, code) DO UPDATE SET label = excluded.label,"
            " category = excluded.category, contact_priority = excluded.contact_priority,"
            " score = excluded.score, callback_minutes = excluded.callback_minutes,"
            " funnel_phase = excluded.funnel_phase, flags = excluded.flags, active = 1",
            [
                (
                    campaign_id,
                    code.code,
                    code.label,
                    code.category.value,
                    code.contact_priority.value,
                    code.contact_priority.score,
                    code.callback_minutes,
                    code.funnel_phase.value if code.funnel_phase else None,
                    code.flags.model_dump_json(),
                )
                for code in config.result_codes.values()
            ],
        )

    @staticmethod
    async def _sync_registration(
        db: aiosqlite.Connection, campaign_id: int, config: CampaignConfig
    ) -> None:
        await db.execute(
            "UPDATE registration_categories SET active = 0 WHERE campaign_id = ?", (campaign_id,)
        )
        for category in config.registration.categories:
            async with db.execute(
                "INSERT INTO registration_categories(campaign_id, name, choice, active)"
                " VALUES (?, ?, ?, 1) ON CONFLICT(campaign_id, name) DO UPDATE SET"
                " choice = excluded.choice, active = 1 RETURNING id",
                (campaign_id, category.name, category.choice.value),
            ) as cur:
                row = await cur.fetchone()
            assert row is not None
            category_id = row[0]
            await db.execute(
                "UPDATE registration_topics SET active = 0 WHERE category_id = ?", (category_id,)
            )
            await db.executemany(
                "INSERT INTO registration_topics(category_id, name, active) VALUES (?, ?, 1)"
                " ON CONFLICT(category_id, name) DO UPDATE SET active = 1",
                [(category_id, topic) for topic in category.topics],
            )

    async def get_campaign(self, name: str) -> Campaign | None:
        """The campaign called `name`, if it was ever synced."""
        row = await self._one(f"SELECT {_CAMPAIGN_COLS} FROM campaigns WHERE name = ?", (name,))
        return _campaign(row) if row else None

    async def list_campaigns(self) -> list[Campaign]:
        """All campaigns, by name."""
        rows = await self._all(f"SELECT {_CAMPAIGN_COLS} FROM campaigns ORDER BY name")
        return [_campaign(r) for r in rows]

    async def lead_counts(self, campaign_id: int) -> dict[str, int]:
        """Number of leads per status."""
        rows = await self._all(
            "SELECT status, COUNT(*) FROM leads WHERE campaign_id = ? GROUP BY status",
            (campaign_id,),
        )
        return {r[0]: r[1] for r in rows}

    async def registration_topics(self, campaign_id: int | None) -> list[RegistrationTopic]:
        """Active topics of a campaign's categories (None: the campaign-less ones)."""
        rows = await self._all(
            "SELECT t.id, t.category_id, c.name AS category, c.choice, t.name"
            " FROM registration_topics t JOIN registration_categories c ON c.id = t.category_id"
            " WHERE c.campaign_id IS ? AND c.active AND t.active ORDER BY c.id, t.id",
            (campaign_id,),
        )
        return [
            RegistrationTopic(
                id=r["id"],
                category_id=r["category_id"],
                category=r["category"],
                choice=r["choice"],
                name=r["name"],
            )
            for r in rows
        ]

    async def register(
        self,
        topic_ids: Sequence[int],
        at: float,
        call_id: int | None = None,
        attempt_id: int | None = None,
        agent: str | None = None,
    ) -> None:
        """Record the topics an agent registered for a call (R-REG-1/2)."""
        async with self._tx() as db:
            await db.executemany(
                "INSERT INTO registrations(topic_id, call_id, attempt_id, agent, registered_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(t, call_id, attempt_id, agent, at) for t in topic_ids],
            )

    async def topic_counts(self, since: float, until: float) -> dict[int, int]:
        """Registrations per topic id over [since, until), all agents (R-REG-3)."""
        rows = await self._all(
            "SELECT topic_id, COUNT(*) FROM registrations"
            " WHERE registered_at >= ? AND registered_at < ? GROUP BY topic_id",
            (since, until),
        )
        return {r[0]: r[1] for r in rows}
