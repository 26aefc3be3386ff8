"""Journeys (event-driven campaigns as durable workflows) and bulk campaigns. Above serving
and the guard (it decides and commits through them); below the simulations and the app."""
