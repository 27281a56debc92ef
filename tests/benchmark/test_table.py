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


def peer_results(float32_error=None):
    out = results(methods=("gradient", "dtd", "lrp_composite"), train=False)
    out.update({"threads": 2, "weights": "random",
                "peer": {"name": "zennit", "zennit": "0.5.1", "torch": "2.14.1", "torch_threads": 2}})
    for row in out["rows"]:
        row.update({"dtd_over_forward": 2.94, "lrp_composite_ms": 40.0, "zennit_dtd_ms": 275.4,
                    "zennit_speedup": 9.0, "zennit_lrp_composite_ms": 400.0,
                    "zennit_lrp_composite_speedup": 10.0, "torch_gradient_ms": 80.0,
                    "torch_gradient_speedup": 4.0, "torch_forward_ms": 30.0,
                    "zennit_dtd_rel_l1": 2.5e-7, "zennit_lrp_composite_rel_l1": 3.1e-5,
                    "zennit_dtd_max_rel_error": 7.6e-8})
    if float32_error is not None:
        out["rows"][1]["zennit_lrp_composite_float32_error"] = float32_error
    return out


def test_dtd_over_forward_column_when_the_rows_carry_it():
    lines = markdown_table(peer_results()).splitlines()
    assert lines[2].startswith("| batch | forward | gradient | dtd | lrp_composite | DTD ÷ gradient "
                               "| DTD ÷ forward | max DTD rel. error |")
    assert lines[4].startswith("| 2 | 10 | 20 | 31 | 40 | 1.53 | 2.94 | 3.3e-07 |")


def test_peer_table_follows_with_times_ratios_agreement_and_conservation():
    lines = markdown_table(peer_results()).splitlines()
    start = lines.index("") + 6  # past our table: blank, header, rule, two rows, blank
    assert lines[start].startswith("Zennit 0.5.1 on PyTorch 2.14.1 against ours on tensorflow, both on the "
                                   "CPU with 2 threads, same network and random weights")
    assert lines[start + 2] == (
        "| batch | DTD ours | DTD Zennit | Zennit ÷ ours | LRP ours | LRP Zennit | Zennit ÷ ours (LRP) "
        "| gradient ours | gradient torch | torch ÷ ours (gradient) | forward ours | forward torch "
        "| DTD rel. L1 | LRP rel. L1 | DTD conservation ours | DTD conservation Zennit |")
    assert lines[start + 4] == ("| 2 | 31 | 275 | 9.0 | 40 | 400 | 10.0 | 20 | 80 | 4.0 | 10 | 30 "
                                "| 2.5e-07 | 3.1e-05 | 3.3e-07 | 7.6e-08 |")
    assert len(lines) == start + 6


def test_float32_error_column_only_when_a_row_needed_it():
    assert "float32 error" not in markdown_table(peer_results())
    lines = markdown_table(peer_results(float32_error=0.99)).splitlines()
    assert "| LRP rel. L1 | LRP float32 error |" in lines[-4]
    assert "| 3.1e-05 | – |" in lines[-2] and "| 3.1e-05 | 9.9e-01 |" in lines[-1]
