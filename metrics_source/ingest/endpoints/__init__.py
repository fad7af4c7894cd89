"""The HTTP endpoints, one module per concern, each with its ninja router; ``api`` mounts them."""
