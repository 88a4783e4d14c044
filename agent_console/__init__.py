"""Textual consoles for duty lawyers, supervisors and schedulers (see issue 4)."""
