"""The base of every config section: unknown keys are errors, assignments are validated.

Kept apart from `siftline.config` so that section models living beside the code they configure
(`siftline.lm.config`) can be imported by it without a cycle.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
