"""What the API process holds for its whole life: settings, one DB engine, one Temporal client."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from temporalio.client import Client

from models.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    temporal: Client
