"""Names people read for record types and their columns. Marked with ``N_`` so that Babel extracts them
into the catalogue; templates translate them with ``_()`` at render time."""

from __future__ import annotations


def N_(text: str) -> str:
    return text


TITLES = {
    "operations": N_("Operations"),
    "training": N_("Training events"),
    "campaigns": N_("Community campaigns"),
    "indicators": N_("Drug-use indicators"),
    "seizures": N_("Seizures"),
    "arrests": N_("Arrests"),
}

COLUMNS = {
    "name": N_("Name"), "code": N_("Code"), "kind": N_("Kind"), "lead_org": N_("Lead agency"),
    "start_date": N_("Start"), "end_date": N_("End"), "outcomes": N_("Outcomes"), "owner_org": N_("Owner"),
    "marking": N_("Marking"), "distribution": N_("Distribution"), "sharing_group_id": N_("Sharing group"),
    "title": N_("Title"), "topic": N_("Topic"), "provider_org": N_("Provider"), "place_id": N_("Place"),
    "org": N_("Organisation"), "province_code": N_("Province"), "audience": N_("Audience"), "reach": N_("Reach"),
    "measure": N_("Measure"), "period_start": N_("Period start"), "period_end": N_("Period end"),
    "drug": N_("Drug"), "sex": N_("Sex"), "age_band": N_("Age band"), "value": N_("Value"),
    "source_text": N_("Source"), "incident_id": N_("Incident"), "quantity": N_("Quantity"), "unit": N_("Unit"),
    "mass_kg": N_("kg"), "purity_pct": N_("Purity %"), "concealment": N_("Concealment"),
    "transport_mode": N_("Transport"), "packaging_marking": N_("Packaging marks"),
    "producing_country": N_("Producing country"), "origin_country": N_("Origin"),
    "transit_countries": N_("Transit"), "destination_country": N_("Destination"),
    "likely_duplicate_of": N_("Likely duplicate of"), "person_id": N_("Person"), "role": N_("Role"),
    "charges": N_("Charges"), "outcome": N_("Outcome"), "age_at_arrest": N_("Age at arrest"),
    "version": N_("Version"), "participants": N_("Participants"),
}

# Columns a list shows (the detail page shows them all); the rest would make the table unreadable.
LIST_COLUMNS = {
    "operations": ("name", "kind", "lead_org", "start_date", "end_date", "participants", "marking"),
    "training": ("title", "topic", "provider_org", "start_date", "participants", "marking"),
    "campaigns": ("name", "org", "province_code", "audience", "reach", "start_date", "marking"),
    "indicators": ("measure", "period_start", "period_end", "province_code", "drug", "sex", "value", "marking"),
}
