"""rotation-picker: the DJ rotation track picker backend."""
