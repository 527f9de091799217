"""Input and output plumbing with no model knowledge: reading images (:mod:`.images`), writing
files and folders atomically (:mod:`.atomic`) and proving which files a command wrote
(:mod:`.manifest`)."""
