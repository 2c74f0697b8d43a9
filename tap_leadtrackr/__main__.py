"""Run the tap as `python -m tap_leadtrackr`."""

from tap_leadtrackr.tap import TapLeadTrackr

TapLeadTrackr.cli()
