"""Engine-level persistence: what journal records mean, replay, recovery and snapshots."""
