"""``python -m maslow ...``: the ``maslow`` command, for environments without the script on the PATH."""

from maslow.cli.main import main

if __name__ == "__main__":
    main()
