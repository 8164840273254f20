"""Processing, training and transform jobs that run the scripts under the container contract."""
