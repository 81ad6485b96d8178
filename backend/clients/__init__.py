"""HTTP clients for upstream services (LML) and the limiter that guards them."""
