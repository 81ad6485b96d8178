"""Plain service classes: explicit dependencies, no web-framework imports."""
