"""Subsystems: pluggable parts of an application, loaded in dependency order."""

from ..errors import SubsystemError
from .defs import ApplicationBase, CoreSubsystem, Subsystem
from .manager import SubsystemManager

__all__ = [
    "ApplicationBase",
    "CoreSubsystem",
    "Subsystem",
    "SubsystemError",
    "SubsystemManager",
]
