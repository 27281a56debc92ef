"""The benchmark's results as a Markdown table (``bench.md``)."""
from __future__ import annotations

from typing import NamedTuple

TRAINING_TAGS = ("train", "train_mixed")


class Column(NamedTuple):
    """A table column: its header, the row key it shows and the cell format."""

    header: str
    key: str
    fmt: str = "{:.0f}"

    def cell(self, row: dict) -> str:
        return self.fmt.format(row[self.key])


def columns(results: dict) -> list[Column]:
    """The columns, in order: batch, forward, each method (ms per volume), DTD ÷ gradient, the
    largest DTD conservation error, training steps (when timed), peak memory."""
    first = results["rows"][0]
    trains = [t for t in TRAINING_TAGS if f"{t}_ms" in first]
    return [
        Column("batch", "batch", "{}"),
        Column("forward", "forward_ms"),
        *[Column(m, f"{m}_ms") for m in results["methods"]],
        Column("DTD ÷ gradient", "dtd_over_gradient", "{:.2f}"),
        Column("max DTD rel. error", "dtd_max_rel_error", "{:.1e}"),
        *[Column(f"{t} step", f"{t}_ms") for t in trains],
        *[Column(f"{t} vol/s", f"{t}_volumes_per_s", "{:.1f}") for t in trains],
        Column("peak RSS MB", "peak_rss_mb"),
    ]


def caption(results: dict) -> str:
    """One line: backend, device, compilation, input, size, and what the numbers are."""
    line = (f"Backend {results['backend']}, device {results['device']} "
            f"({results['machine']['cpu_count']} CPUs), jit_compile={results['jit_compile']}, "
            f"input {tuple(results['input_shape'])}, {results['n_parameters']:,} parameters; "
            f"ms per volume, median of {results['repeats']} runs")
    if "integrated_gradients" in results["methods"]:
        line += f"; integrated_gradients with {results['ig_steps']} steps"
    return line


def markdown_table(results: dict) -> str:
    """The results as a Markdown table (ms per volume, median of the timed runs), caption first."""
    cols = columns(results)
    lines = [caption(results), "",
             "| " + " | ".join(c.header for c in cols) + " |",
             "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(c.cell(row) for c in cols) + " |" for row in results["rows"]]
    return "\n".join(lines) + "\n"
