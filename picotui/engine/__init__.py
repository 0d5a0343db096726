"""Everything that is not UI. Never imports textual; torch is imported lazily (worker thread)."""
