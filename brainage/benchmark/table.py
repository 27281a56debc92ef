"""The benchmark's results as Markdown (``bench.md``): our table, then the peer's when compared."""
from __future__ import annotations

from typing import NamedTuple

TRAINING_TAGS = ("train", "train_mixed")


class Column(NamedTuple):
    """A table column: its header, the row key it shows and the cell format."""

    header: str
    key: str
    fmt: str = "{:.0f}"

    def cell(self, row: dict) -> str:
        return self.fmt.format(row[self.key]) if self.key in row else "–"


def _present(first: dict, *candidates: Column) -> list[Column]:
    return [c for c in candidates if c.key in first]


def columns(results: dict) -> list[Column]:
    """The columns, in order: batch, forward, each method (ms per volume), DTD ÷ gradient,
    DTD ÷ forward (when the rows carry it), the largest DTD conservation error, training steps
    (when timed), peak memory."""
    first = results["rows"][0]
    trains = [t for t in TRAINING_TAGS if f"{t}_ms" in first]
    return [
        Column("batch", "batch", "{}"),
        Column("forward", "forward_ms"),
        *[Column(m, f"{m}_ms") for m in results["methods"]],
        Column("DTD ÷ gradient", "dtd_over_gradient", "{:.2f}"),
        *_present(first, Column("DTD ÷ forward", "dtd_over_forward", "{:.2f}")),
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


# The peer table: per compared method ours, theirs and their ÷ ours, then agreement and
# conservation. Ratios first in docs/results.md, but here each sits beside the two times it divides.
PEER_COLUMNS = (
    Column("batch", "batch", "{}"),
    Column("DTD ours", "dtd_ms"),
    Column("DTD Zennit", "zennit_dtd_ms"),
    Column("Zennit ÷ ours", "zennit_speedup", "{:.1f}"),
    Column("LRP ours", "lrp_composite_ms"),
    Column("LRP Zennit", "zennit_lrp_composite_ms"),
    Column("Zennit ÷ ours (LRP)", "zennit_lrp_composite_speedup", "{:.1f}"),
    Column("gradient ours", "gradient_ms"),
    Column("gradient torch", "torch_gradient_ms"),
    Column("torch ÷ ours (gradient)", "torch_gradient_speedup", "{:.1f}"),
    Column("forward ours", "forward_ms"),
    Column("forward torch", "torch_forward_ms"),
    Column("DTD rel. L1", "zennit_dtd_rel_l1", "{:.1e}"),
    Column("DTD float32 error", "zennit_dtd_float32_error", "{:.1e}"),
    Column("LRP rel. L1", "zennit_lrp_composite_rel_l1", "{:.1e}"),
    Column("LRP float32 error", "zennit_lrp_composite_float32_error", "{:.1e}"),
    Column("DTD conservation ours", "dtd_max_rel_error", "{:.1e}"),
    Column("DTD conservation Zennit", "zennit_dtd_max_rel_error", "{:.1e}"),
)


def peer_caption(results: dict) -> str:
    """What the peer table compares: libraries, versions, threads."""
    peer = results["peer"]
    return (f"Zennit {peer['zennit']} on PyTorch {peer['torch']} against ours on {results['backend']}, "
            f"both on the CPU with {results['threads']} threads, same network and "
            f"{results['weights']} weights; ms per volume; rel. L1 = Σ|ours − Zennit| / Σ|ours|")


def _peer_columns(rows: list[dict]) -> list[Column]:
    """The peer columns; a float32 error only when some row needed it (its maps disagreed)."""
    return [c for c in PEER_COLUMNS if not c.key.endswith("_float32_error")
            or any(c.key in row for row in rows)]


def _table(cols, rows) -> list[str]:
    return (["| " + " | ".join(c.header for c in cols) + " |", "|" + "---|" * len(cols)]
            + ["| " + " | ".join(c.cell(row) for c in cols) + " |" for row in rows])


def markdown_table(results: dict) -> str:
    """The results as a Markdown table (ms per volume, median of the timed runs), caption first;
    with a peer, its table follows."""
    lines = [caption(results), "", *_table(columns(results), results["rows"])]
    if results.get("peer"):
        lines += ["", peer_caption(results), "", *_table(_peer_columns(results["rows"]), results["rows"])]
    return "\n".join(lines) + "\n"
