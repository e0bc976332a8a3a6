"""`python -m dialerd` is the same as the `dialerd` console script."""

from dialerd.cli import main

main()
