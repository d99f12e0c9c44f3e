"""``python cli.py fit --config configs/reach.yaml`` does what ``quadlit fit ...`` does."""

import sys

from quadlit.launch import main

if __name__ == "__main__":
    sys.exit(main())
