"""rnnlab: train, compare and diagnose recurrent text classifiers."""
