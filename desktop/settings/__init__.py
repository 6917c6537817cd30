"""Settings: the dialog (layout), its controller, and the memory estimate."""
