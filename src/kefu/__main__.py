"""`python -m kefu` is the `kefu` command."""

from kefu.cli import main

main()
