"""Pure business rules: no I/O, no framework, nothing from the other layers."""
