"""The language of the system: vocabularies, places and validated models."""
