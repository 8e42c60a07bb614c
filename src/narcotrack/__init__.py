"""narcotrack: the counter-narcotics information system of Cambodia's drug-control agencies and partners."""

__version__ = "0.1.0"
