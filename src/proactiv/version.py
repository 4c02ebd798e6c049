"""The package version, on the ground floor so that any module can name it (the package ``__init__``
re-exports it; nothing below the entry floor imports the package itself)."""

__version__ = "0.1.0"
