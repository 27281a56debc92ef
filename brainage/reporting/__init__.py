"""Figures, HTML reports and verdict text made from the stages' tables and maps (no computation).

* :mod:`~brainage.reporting.canvas` — matplotlib figures without pyplot's global state;
* :mod:`~brainage.reporting.explain_figures` — subject overlays, group maps, region charts;
* :mod:`~brainage.reporting.explain_html` — the explain stage's ``report.html``;
* :mod:`~brainage.reporting.evaluate_figures` — perturbation, randomisation, localisation, methods;
* :mod:`~brainage.reporting.verdict` — the evaluate stage's ``verdict.md``.
"""
