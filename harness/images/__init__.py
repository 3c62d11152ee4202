"""Docker images of the containers backend: Dockerfiles per component and their builder
(:mod:`harness.images.build`)."""
