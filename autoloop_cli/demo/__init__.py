"""The local lifecycle demo: the whole loop on the local AWS (`autoloop local demo`)."""
