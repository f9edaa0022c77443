"""The procedural shapes data set, its analyzer, and training of the embedded demo generator."""
