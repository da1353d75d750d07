"""The HTTP server: FastAPI on uvicorn over one data directory."""

from .app import create_app
from .services import Services
from .settings import Settings, load_settings

__all__ = ["Services", "Settings", "create_app", "load_settings"]
