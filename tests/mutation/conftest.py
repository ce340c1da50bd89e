"""Nothing here is a test: the mutation run's scripts (tests/MUTATION.md) import cosmic-ray,
which only the `mutation` dependency group installs. Keep pytest from collecting them."""

collect_ignore_glob = ["*"]
