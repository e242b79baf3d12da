"""Errors written for users: each says where the problem is and what is wrong."""

from __future__ import annotations


class GPLinkerError(Exception):
    """Base class for errors the CLI reports without a traceback."""


class ConfigError(GPLinkerError):
    """A config file or --set override is wrong."""


class DataError(GPLinkerError):
    """A data line is wrong; carries its location as `path:line` (line 0: the file as a whole, shown as `path:`)."""

    def __init__(self, path: str, line: int, message: str):
        self.path, self.line, self.message = str(path), line, message
        super().__init__(f"{self.path}:{line}: {message}" if line > 0 else f"{self.path}: {message}")


class Interrupted(GPLinkerError):
    """A run stopped by a signal after saving its state; the CLI exits with 128 + `signum`."""

    def __init__(self, message: str, signum: int):
        self.signum = signum
        super().__init__(message)
