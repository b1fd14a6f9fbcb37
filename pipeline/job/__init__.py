"""The job: its phases in order (plan, score, dedupe shuffles, cuts, finalize, report), composed
by `runner.run` over the stages and run on an executor."""
