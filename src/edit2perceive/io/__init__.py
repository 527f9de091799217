"""Input and output plumbing with no model knowledge: reading images (:mod:`.images`) and writing
files and folders atomically (:mod:`.atomic`)."""
