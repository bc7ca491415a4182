"""Video: WHIP ingest, WHEP playback, packet forwarding (no re-encoding), recording."""
