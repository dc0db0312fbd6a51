"""What a request may hold: ids, paths, env names and values, limits, checked before anything is written."""
