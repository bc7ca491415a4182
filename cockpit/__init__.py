"""Fire and emergency operations cockpit: one live situation picture."""

__all__: list[str] = []
