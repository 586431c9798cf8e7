"""Subsystems: pluggable parts of an application, loaded in dependency order."""

from ..errors import SubsystemError
from .defs import ApplicationBase, CoreSubsystem, Subsystem, SubsystemLookup
from .manager import SubsystemManager, installed_app_version

__all__ = [
    "ApplicationBase",
    "CoreSubsystem",
    "Subsystem",
    "SubsystemError",
    "SubsystemLookup",
    "SubsystemManager",
    "installed_app_version",
]
