"""The curation pipeline: normalise, filter, language, dedupe, match, balance (Apache Beam)."""
