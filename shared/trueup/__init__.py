"""trueup: finds billing gaps between RMM device counts and Pax8 licence quantities."""
