"""L10 human interface: the web console."""
