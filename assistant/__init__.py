"""Chat assistant with machine-checked citations over strategy documents and reports."""

__version__ = "0.1.0"
