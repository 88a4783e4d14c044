"""The 7×24 duty roster: shift templates, solver, staffing, exports and shift-edge duty."""
