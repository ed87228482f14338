"""Exceptions raised by afterlearner, all subclasses of :class:`AfterlearnerError`."""

from __future__ import annotations


class AfterlearnerError(Exception):
    """Base class of every error afterlearner raises on purpose."""


class SpaceError(AfterlearnerError, ValueError):
    """An ℵ-space definition is invalid (unknown name, bad mode, bad range, ...)."""


class ConfigError(AfterlearnerError, ValueError):
    """A retrofit setting is invalid (budget, workers, optimizer, ...)."""


class StoreError(AfterlearnerError):
    """A store file cannot be used: not an afterlearner store, corrupt, or made with other settings."""


class TooManyFailures(AfterlearnerError):
    """The ℵ-loss failed too many times in a row; the message names the last failure."""


class TaskError(AfterlearnerError):
    """A task file or factory cannot be loaded or does not return a :class:`afterlearner.Task`."""


class PatchError(AfterlearnerError):
    """A patch file cannot be read or applied: not a patch, altered, or made for another model."""
