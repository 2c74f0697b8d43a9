"""A local LeadTrackr API for tests, the demo and users without an API key."""
