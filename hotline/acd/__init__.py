"""Automatic call distribution: queues, lawyers' states and the router (pure logic).

:mod:`hotline.acd.agents` is the lawyer state machine (status separate from state, as in
FreeSWITCH mod_callcenter), :mod:`hotline.acd.router` decides which waiting caller is
offered to which lawyer. Neither does I/O or reads the clock: the coordinator passes ``now``.
"""
