"""The two schemas the service works with: the station's (adopted, never changed) and its own."""

from __future__ import annotations

from dataclasses import dataclass

# Tokens in SQL files (migrations, the development fixture) that stand for the configured names.
STATION_TOKEN = "__STATION__"
SERVICE_TOKEN = "__SERVICE__"

# The station's change-data-capture channels (station.md §1): every row change of rotation,
# library, artists, ... as JSON, and the primary key alone when the row is too large.
CDC_CHANNEL = "cdc"
CDC_OVERSIZED_CHANNEL = "cdc_oversized"
# ... and a notice when the cdc trigger itself failed (the change is unknown).
CDC_ERROR_CHANNEL = "cdc_error"


@dataclass(frozen=True)
class Schemas:
    """Schema names (validated identifiers: safe to put into SQL unquoted) and derived channel names.

    Attributes:
        station: the station's schema (``WXYC_SCHEMA_NAME``).
        service: this service's own schema (``ROTATION_PICKER_SCHEMA_NAME``).
    """

    station: str = "wxyc_schema"
    service: str = "rotation_picker"

    @property
    def answers_channel(self) -> str:
        """NOTIFY channel: new answers were persisted (payload: the table name)."""
        return f"{self.service}_answers"

    @property
    def hints_channel(self) -> str:
        """NOTIFY channel: station rows the service has no cdc trigger for changed."""
        return f"{self.service}_hints"

    def render(self, sql: str) -> str:
        """Replace the schema tokens in ``sql`` with the configured names."""
        return sql.replace(SERVICE_TOKEN, self.service).replace(STATION_TOKEN, self.station)
