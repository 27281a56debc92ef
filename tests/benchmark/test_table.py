"""bench.md from hand-made results: columns in order, formats, optional training columns."""
from brainage.benchmark.table import markdown_table


def results(methods=("gradient", "dtd"), train=True):
    row = {"batch": 2, "forward_ms": 10.4, "gradient_ms": 20.0, "dtd_ms": 30.6,
           "integrated_gradients_ms": 99.5, "dtd_over_gradient": 1.53, "dtd_max_rel_error": 3.26e-7,
           "peak_rss_mb": 1234.4}
    if train:
        row.update({"train_ms": 40.2, "train_volumes_per_s": 24.87})
    return {"backend": "tensorflow", "device": "cpu", "machine": {"cpu_count": 2},
            "jit_compile": False, "input_shape": [20, 22, 19, 1], "n_parameters": 1009,
            "repeats": 3, "methods": list(methods), "ig_steps": 8, "rows": [row, dict(row, batch=8)]}


def test_table_has_the_columns_in_order_and_formats_cells():
    lines = markdown_table(results()).splitlines()
    assert lines[0] == ("Backend tensorflow, device cpu (2 CPUs), jit_compile=False, input "
                        "(20, 22, 19, 1), 1,009 parameters; ms per volume, median of 3 runs")
    assert lines[2] == ("| batch | forward | gradient | dtd | DTD ÷ gradient | max DTD rel. error "
                        "| train step | train vol/s | peak RSS MB |")
    assert lines[3] == "|" + "---|" * 9
    assert lines[4] == "| 2 | 10 | 20 | 31 | 1.53 | 3.3e-07 | 40 | 24.9 | 1234 |"
    assert lines[5].startswith("| 8 |") and len(lines) == 6


def test_training_columns_only_when_timed_and_ig_steps_in_the_caption():
    text = markdown_table(results(methods=("gradient", "dtd", "integrated_gradients"), train=False))
    assert "train" not in text
    assert text.splitlines()[0].endswith("; integrated_gradients with 8 steps")
    assert "| 2 | 10 | 20 | 31 | 100 | 1.53 | 3.3e-07 | 1234 |" in text
