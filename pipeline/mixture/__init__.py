"""Domain mixture: temperature sampling weights, the Cooldown schedule, and mixed shards.

`weights` (p_i(tau) and exact integer splits) and `schedule` (budgets, epochs, caps) are pure
functions over token counts; `tokens` counts the kept data, `report` writes `weights.json` and
`plot` its figure, `mix` writes Parquet shards drawn by a phase's weights. Nothing is imported
here, so `siftline.config` can import `siftline.mixture.config` without a cycle.
"""
