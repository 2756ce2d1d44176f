"""``python -m trainer.demo``: the demo (see trainer/demo/arguments.py's HELP)."""
import sys

from trainer.demo.run import main

sys.exit(main())
