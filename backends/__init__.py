"""Execution backends: the places an order can go (simulator, TastyTrade, QuantConnect).

Backends depend on the core (``fsm``); the core never imports a backend.
"""
