"""The build pipeline: from a validated request to stored outputs, doing the least work."""
