"""IVR: YAML call flows, their validator, the sans-IO engine, simulator and graph."""
