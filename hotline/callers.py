"""What the hotline knows about a caller before anyone speaks (flows branch on it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hotline.domain import GreenReason


@dataclass(frozen=True)
class CallerFacts:
    """Facts about one caller, looked up from the ledger when the call arrives.

    ``repeat`` means an earlier ticket within the configured window (首问负责 routing uses
    ``last_lawyer``); ``green_channel`` comes from the known-caller list.
    """

    number: str = ""
    region: str = ""
    known: bool = False
    repeat: bool = False
    last_ticket_no: str | None = None
    last_lawyer: str | None = None
    green_channel: bool = False
    green_reasons: tuple[GreenReason, ...] = field(default=())

    def as_facts(self) -> dict[str, object]:
        """The ``caller.*`` names a flow's ``branch`` may test."""
        return {
            "caller.number": self.number,
            "caller.region": self.region,
            "caller.known": self.known,
            "caller.repeat": self.repeat,
            "caller.last_lawyer": self.last_lawyer,
            "caller.green_channel": self.green_channel,
            "caller.green_reasons": [r.value for r in self.green_reasons],
        }


def mask_number(number: str) -> str:
    """Mask a phone number for logs: keep the first 3 and last 4 digits of long numbers."""
    digits = number.strip()
    if len(digits) >= 11:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    if len(digits) > 4:
        return "*" * (len(digits) - 4) + digits[-4:]
    return "*" * len(digits)
