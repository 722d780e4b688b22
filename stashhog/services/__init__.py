"""Services: the rules of the product. Routes, the CLI, the relay and tasks call these."""
