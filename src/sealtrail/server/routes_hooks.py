"""Webhooks and collectors of the tools teams already run (one route per source type)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
