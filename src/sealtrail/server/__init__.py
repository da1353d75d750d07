"""The HTTP server: FastAPI on uvicorn over one data directory."""

from .app import Services, create_app
from .settings import Settings, load_settings

__all__ = ["Services", "Settings", "create_app", "load_settings"]
