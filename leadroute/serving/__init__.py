"""The routing endpoint: FastAPI over the policy core, a durable decision log, outcomes, keys.

Build it with :func:`create_app`; ``leadroute serve`` runs it on uvicorn.
"""

from leadroute.serving.app import create_app
from leadroute.serving.deployment import Arm, Deployment, build_deployment, load_scorer
from leadroute.serving.keys import KeyRing, load_keys
from leadroute.serving.log import JsonLog, log_files, read_records
from leadroute.serving.router import RoutingService, decision_seed

__all__ = [
    "Arm",
    "Deployment",
    "JsonLog",
    "KeyRing",
    "RoutingService",
    "build_deployment",
    "create_app",
    "decision_seed",
    "load_keys",
    "load_scorer",
    "log_files",
    "read_records",
]
