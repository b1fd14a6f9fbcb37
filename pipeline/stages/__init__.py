"""Stages: `Table -> Table` callables that add columns and never drop rows, one module each.

Each stage module declares its `SPEC` (`siftline.stages.spec.StageSpec`); `registry` lists the
built-in ones, and `chain` builds a worker's stages and applies them with the contract checked.
Users add their own through `stages.custom` (`siftline.stages.custom`).
"""
