"""L07 learning: feedback, training examples and learned templates."""
