"""Seed 000 §2.2.3 on digits: DTD heat maps, "anti-heatmaps" and a misclassified digit.

Modules: ``data`` (scikit-learn's digits upsampled, the stratified split), ``networks`` (the seed's
dense network and CNN, training), ``antiheatmap`` (normalisation and the measurement of the seed's
claim), ``settings`` (the checked ``digits`` config), ``experiment`` (train, explain and measure one
network), ``figures`` (``matplotlib.figure.Figure`` objects). The stage is
:mod:`brainage.seed_digits`.
"""
