"""dialerd.config: the typed configuration (daemon + campaigns) and its located-error loader.

Import the models from here (``from dialerd.config import CampaignConfig, Outcome``); the
loader (``load_config``) turns a configuration directory into them or raises `ConfigError`
whose issues each name a file, a line and a key.
"""

from dialerd.config.loader import Config, ConfigError, ConfigIssue, load_campaigns, load_config
from dialerd.config.models import (
    WEEKDAYS,
    CallingHours,
    CampaignConfig,
    Category,
    ContactPriority,
    DaemonConfig,
    DialMode,
    FunnelPhase,
    Outcome,
    RegistrationCategory,
    RegistrationChoice,
    RegistrationConfig,
    ResultCode,
    ResultCodeFlags,
    RetryRule,
    TieBreak,
    TimeWindow,
)

__all__ = [
    "WEEKDAYS",
    "CallingHours",
    "CampaignConfig",
    "Category",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "ContactPriority",
    "DaemonConfig",
    "DialMode",
    "FunnelPhase",
    "Outcome",
    "RegistrationCategory",
    "RegistrationChoice",
    "RegistrationConfig",
    "ResultCode",
    "ResultCodeFlags",
    "RetryRule",
    "TieBreak",
    "TimeWindow",
    "load_campaigns",
    "load_config",
]
