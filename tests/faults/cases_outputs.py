"""Fault cases of the outputs: metric-depth files, points, video, point clouds, re-runs."""

from __future__ import annotations
