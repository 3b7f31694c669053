"""`python -m diffcli` runs the command line."""

from diffcli.cli.app import main

if __name__ == "__main__":
    main()
