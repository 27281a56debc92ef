"""Data formats: one module per way of storing a cohort's grey-matter volumes.

``data.format`` names one of them; the data stage and the later stages that read a subject's own
volume look it up here (:func:`read_format`) and never branch on its name:

* ``nifti`` (:mod:`~brainage.data.formats.nifti`): a participants table and one NIfTI image per
  subject, found with ``data.image_template`` (a BIDS-style glob must match exactly one file);
* ``npy`` (:mod:`~brainage.data.formats.npy`): one stacked N × X × Y × Z array, row i of the
  participants table being volume i.

Each format registers itself where it is defined (``@register_format("<name>")`` on a
:class:`DataFormat` subclass), and importing this package imports every public module of it
(:func:`brainage.discovery.import_public_modules`), so a
format in a new module ``brainage/data/formats/<name>.py`` is known
everywhere with no edit here: a new format is that module plus its preset
``configs/data/<preset>.yaml``.
"""
from brainage.data.formats.base import (
    DataFormat,
    Located,
    SourceGrid,
    format_class,
    format_names,
    get_format,
    read_format,
    register_format,
    unregister_format,
)
from brainage.discovery import import_public_modules

__all__ = ["DataFormat", "Located", "SourceGrid", "format_class", "format_names", "get_format", "read_format",
           "register_format", "unregister_format"]


import_public_modules(__path__, __name__ + ".")
