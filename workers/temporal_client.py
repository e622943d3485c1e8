"""The one Temporal client a process holds, connected at start-up."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor

from models.settings import Settings

QUEUE_ROLES = ("bookings", "calendar", "notify", "index")


async def connect_temporal(settings: Settings, *, lazy: bool = False) -> Client:
    """Connect to the configured Temporal frontend (lazy: dial on first use, for the API's start-up)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        lazy=lazy,
        # One trace per booking: API span → workflow → activities (workers built on this client inherit it).
        interceptors=[TracingInterceptor()],
    )


def all_task_queues(settings: Settings) -> list[str]:
    return [settings.task_queue(role) for role in QUEUE_ROLES]


async def ensure_search_attributes(client: Client) -> None:
    """Register Huddle's search attributes if the server lacks them (idempotent)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    from workers.devserver import SEARCH_ATTRIBUTES

    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper()}")
        for name, kind in SEARCH_ATTRIBUTES.items()
        if name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
