"""Speed-to-lead SLAs: business time, the reminder → re-assign → escalate state machine,
stuck-lead detection, KPIs and replay on the simulated company (pure: the clock is passed in)."""

from models.sla.clock import BusinessCalendar, add_time, calendar_of, calendars, elapsed_time
from models.sla.kpi import SLA_DIMENSIONS, first_touch_frame, sla_kpis
from models.sla.machine import Due, Handoff, Hop, deadline_of, destination_of, next_due, next_owner
from models.sla.replay import SlaComparison, replay_with_sla
from models.sla.stuck import OpenLead, StuckReport, detect_stuck

__all__ = [
    "SLA_DIMENSIONS",
    "BusinessCalendar",
    "Due",
    "Handoff",
    "Hop",
    "OpenLead",
    "SlaComparison",
    "StuckReport",
    "add_time",
    "calendar_of",
    "calendars",
    "deadline_of",
    "destination_of",
    "detect_stuck",
    "elapsed_time",
    "first_touch_frame",
    "next_due",
    "next_owner",
    "replay_with_sla",
    "sla_kpis",
]
