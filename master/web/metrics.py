"""master.web.metrics: owned by helper H3 of issue 14 (see the shared design); a placeholder
router until its owner fills it, so master.web.app imports it."""

from fastapi import APIRouter

router = APIRouter()
