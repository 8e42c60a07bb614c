"""FastAPI app: JSON API under /api/v1, HTML pages for people. No business logic lives here."""
