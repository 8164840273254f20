"""The inference contract shared by batch transform and endpoints: fetch a Model, host its handlers."""
