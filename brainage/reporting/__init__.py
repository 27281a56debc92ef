"""Figures, HTML reports and verdict text made from the stages' tables and maps (no computation)."""
