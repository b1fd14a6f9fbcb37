"""Where every file of a run lives. One place, so runner, select, inspect and tests agree.

OUT/
  data/part-PPPPP-SSS.parquet   kept documents (zstd), PPPPP = input split, SSS = shard
  scored/part-PPPPP.parquet     every scored row: ids, score columns, drop_reason (no text)
  rejects/part-PPPPP.jsonl      quarantined records with source, position and error
  stats.json, manifest.json     accounting and provenance, written last
  plots/<score>.png             a cut stage's score histograms with its cut (color_score.png)
  weights.json, plots/weights.png   domain sampling weights over training (siftline.mixture)
  mix/phase-K/                  Parquet shards drawn by phase K's weights (`siftline mix`)
  models/prior, models/conditional   CoLoR-Filter's trained auxiliary models (kept by
                                --overwrite, and reused while their config is unchanged)
  eval/                         `siftline eval-selection`: report.json, loss_curves.png, models/
  _work/                        resumable intermediate state, removed when the run completes
"""

from __future__ import annotations

from dataclasses import dataclass

from siftline.io.storage import join

OUTPUT_ENTRIES = ("data", "scored", "rejects", "stats.json", "manifest.json", "_work", "plots",
                  "weights.json", "mix", "eval")
KEPT_ENTRIES = ("models",)  # siftline's own, but --overwrite leaves them (costly to rebuild)


@dataclass(frozen=True)
class Layout:
    root: str
    work: str

    @classmethod
    def for_output(cls, root: str, work_dir: str | None = None) -> Layout:
        root = root.rstrip("/")
        return cls(root, (work_dir or join(root, "_work")).rstrip("/"))

    def path(self, rel: str) -> str:
        return join(self.root, rel)

    @property
    def plan(self) -> str:
        return join(self.work, "plan.json")

    @property
    def models(self) -> str:
        """Models a run trains or builds (kept by --overwrite: costly to rebuild)."""
        return join(self.root, "models")

    @property
    def stats(self) -> str:
        return join(self.root, "stats.json")

    @property
    def manifest(self) -> str:
        return join(self.root, "manifest.json")

    def stage(self, part: int) -> str:
        return join(self.work, "stage", f"part-{part:05d}.arrow")

    def partial(self, part: int, batch: int | None = None) -> str:
        """A split's batch checkpoints (pipeline/job/split_checkpoint.py), or one of them."""
        folder = join(self.work, "partial", f"part-{part:05d}")
        return folder if batch is None else join(folder, f"batch-{batch:05d}.arrow")

    def map_done(self, part: int) -> str:
        return join(self.work, "done", f"map-{part:05d}.json")

    def final_done(self, part: int) -> str:
        return join(self.work, "done", f"final-{part:05d}.json")

    def step_dir(self, step: str) -> str:
        """A global step's scratch folder (its shuffle files, its components' rounds)."""
        return join(self.work, step)

    def step_done(self, name: str) -> str:
        return join(self.work, "done", f"{name}.json")

    def shuffle_map(self, step: str, part: int) -> str:
        return join(self.step_dir(step), f"map-{part:05d}.arrow")

    def shuffle_reduce(self, step: str, bucket: int) -> str:
        return join(self.step_dir(step), f"reduce-{bucket:03d}.arrow")

    def cut(self, stage: str) -> str:
        """A stage's global cut, decided once per run (a resume reuses it)."""
        return join(self.work, "cuts", f"{stage}.json")

    def score_plot(self, column: str) -> str:
        """Histograms of a cut stage's score column, with the cut."""
        return join(self.root, "plots", f"{column}.png")

    def data_glob(self, part: int) -> str:
        """Every data shard of one part."""
        return join(self.root, f"data/part-{part:05d}-*.parquet")

    @staticmethod
    def scored_rel(part: int) -> str:
        return f"scored/part-{part:05d}.parquet"

    @staticmethod
    def data_rel(part: int, shard: int) -> str:
        return f"data/part-{part:05d}-{shard:03d}.parquet"

    @staticmethod
    def rejects_rel(part: int) -> str:
        return f"rejects/part-{part:05d}.jsonl"

    # -- domain mixture (siftline.mixture) --------------------------------------------------
    @property
    def weights(self) -> str:
        return join(self.root, "weights.json")

    @property
    def weights_plot(self) -> str:
        return join(self.root, "plots", "weights.png")

    @staticmethod
    def mix_rel(phase: int, shard: int | None = None) -> str:
        """mix/phase-K/ (the folder), or its shard part-SSSSS.parquet."""
        folder = f"mix/phase-{phase}"
        return folder if shard is None else f"{folder}/part-{shard:05d}.parquet"
