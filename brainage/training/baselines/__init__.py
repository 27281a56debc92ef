"""Baselines on the CNN's exact split: is the network better than a linear fit?

``settings``   BaselineSettings: ``trainer.baselines`` read once
``catalogue``  the baselines there are: name, features, target
``features``   block means (downsampled volumes) and atlas-region GM means
``models``     the baselines, their penalty chosen on the validation split, tested once
``suite``      every configured baseline fitted for a run: ``metrics.json``'s ``baselines``
"""
