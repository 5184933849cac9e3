"""Modbus drivers (pymodbus) for the per-socket energy meters and the Sense CT kit."""
