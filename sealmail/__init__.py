"""Layer 3: the command line and process wiring."""

__version__ = "0.1.0"
