"""Insights computed from a segmented customer table: KPIs, response, value, personas, actions."""
