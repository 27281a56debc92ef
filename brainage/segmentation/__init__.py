"""Seed 003 (Matos et al. 2019) on our data: a small 3D U-Net segments the hippocampi from GM maps,
and guided backpropagation, DTD and others explain the summed logits of its predicted mask.

Modules: ``settings`` (the checked ``unet`` config), ``region`` (the structure in the atlas and the
box around it), ``labels`` (each subject's labels, warped by its own deformation), ``dataset``
(volumes, labels and split in the box), ``network`` (the U-Net and its training), ``scores``
(Dice), ``explanations`` (region targets explained, conservation), ``experiment`` (train, score,
explain), ``maps`` (NIfTI files), ``figures`` (``matplotlib.figure.Figure`` objects). The stage is
:mod:`brainage.seed_unet`.
"""
