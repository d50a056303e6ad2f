"""qsyncd: watch directories and upload every finished file to QingStor, once, intact."""

__version__ = "0.1.0"
