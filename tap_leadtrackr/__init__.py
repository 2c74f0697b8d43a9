"""tap-leadtrackr: a Singer tap and Meltano extractor for LeadTrackr leads."""
